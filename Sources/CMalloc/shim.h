// glibc's allocator controls (mallopt), which Swift's Glibc module does not import. Linux only.
#include <malloc.h>
