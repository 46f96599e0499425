#define T 1
/* Reached by an absolute #include: __FILE__ must name this file as the
   client spells it, even though the server opens its copy elsewhere. */
static const char abs_where[] = __FILE__;
