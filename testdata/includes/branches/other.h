#error other
