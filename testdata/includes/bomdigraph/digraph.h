%:define DIGRAPH 2
