// Catch2's main, compiled once into its own -O1 static library (it is the slowest file to build).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
