/* tests/analyze.c - the translation unit that cppcheck and clang-tidy analyse (tests/suite.sh):
   ipc.h's implementation and nothing else, so every function in it is analysed and every
   finding is in ipc.h. Compiled by nothing; see .clang-tidy and tests/cppcheck-suppressions.xml. */
#define IPC_IMPLEMENTATION
#include "../ipc.h"
