// Boost.JSON's compiled part, built once here (header-only mode).
#include <boost/json/src.hpp>
