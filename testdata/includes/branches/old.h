#error old
