int part1;
