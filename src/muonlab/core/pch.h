// Precompiled header: LibTorch's headers take most of each translation unit's
// compile time, so every target compiles them once here.
#pragma once
#include <torch/torch.h>

#include <fmt/format.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
