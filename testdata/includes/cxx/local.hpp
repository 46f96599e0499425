#pragma once
#if __cplusplus >= 201703L
#include "modern.hpp"
#else
#include "legacy.hpp"
#endif
struct Local { static constexpr int value = MODERN; };
