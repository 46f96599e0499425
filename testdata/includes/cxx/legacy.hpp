#error legacy
