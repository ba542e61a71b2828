/* main() of a property binary: the engine's command line for property PROP_NAME (or, in
 * a binary built without one, the property --property names). */
#include "props/prop.h"

#ifndef PROP_NAME
#define PROP_NAME NULL
#endif

int main(int argc, char **argv) { return prop_main(argc, argv, prop_all, PROP_NAME); }
