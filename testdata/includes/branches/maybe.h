#error maybe
