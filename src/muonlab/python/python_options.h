// The Python optimizers' options: torch.optim param-group dicts to and from
// muonlab::optim's option structs. Keys are the TOML [optimizer] keys, so a
// config and a Python script spell every option the same way. A bad key or
// value raises ValueError naming the option and what it accepts.
#pragma once

#include <torch/extension.h>

#include <string>

#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"

namespace muonlab::python {

namespace py = pybind11;

// Every Muon option with its default for `variant` ("muon", "muon2",
// "muon2f": these two with their second moment and ns_steps = 3; "normuon":
// neuron_norm = true).
py::dict muon_defaults(const std::string& variant);

// MuonOptions from a param group (or any mapping). Keys not among the Muon
// options are ignored when `strict` is false (a param group also holds
// "params", a scheduler's "initial_lr", ...), and rejected when true.
optim::MuonOptions muon_options_from(const py::dict& group, bool strict);

py::dict adamw_defaults();
optim::AdamWOptions adamw_options_from(const py::dict& group, bool strict);

}  // namespace muonlab::python
