// The whole definition of compat::CollectiveGroup (c10d's ProcessGroup up to
// 1.13, Backend from 2.0), for the files that run collectives on one.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "muonlab/core/torch_compat.h"
#if MUONLAB_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif
