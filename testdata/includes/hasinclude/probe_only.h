/* Only probed with __has_include. */
