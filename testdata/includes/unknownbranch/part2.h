int part2;
