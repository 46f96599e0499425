#error never included
