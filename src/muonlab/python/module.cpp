// muonlab._C: the C++ optimizers for Python. The Python classes in
// python/muonlab/optim.py keep their state in torch.optim's `state` dict;
// every step hands those tensors to the same muon_step() and adamw_multi_tensor_step()
// that the C++ optimizers run, so there is one implementation of the maths.
#include <torch/csrc/Generator.h>
#include <torch/extension.h>

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "muonlab/analysis/alignment.h"
#include "muonlab/analysis/muon_input_tracker.h"
#include "muonlab/analysis/one_step_diagnostics.h"
#include "muonlab/analysis/polar_factor.h"
#include "muonlab/analysis/spectrum_alignment.h"
#include "muonlab/core/dtype_name.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/openmp_runtime.h"
#include "muonlab/core/openmp_wait.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/finite_check.h"
#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/muon_step.h"
#include "muonlab/optimizers/muon_step_graph.h"
#include "muonlab/optimizers/newton_schulz.h"
#include "muonlab/optimizers/param_dtype.h"
#include "muonlab/optimizers/qk_clip.h"
#include "muonlab/python/python_options.h"

namespace muonlab::python {
namespace {

namespace optim = muonlab::optim;

// A head layout from Python: a tuple (num_heads, head_dim, "rows"|"cols",
// [segment heads...][, interleave]), checked (ValueError naming `owner`).
optim::HeadLayout head_layout_of(const py::tuple& t, const std::string& owner) {
  optim::HeadLayout heads;
  heads.num_heads = t[0].cast<int64_t>();
  heads.head_dim = t[1].cast<int64_t>();
  heads.axis = t[2].cast<std::string>() == "cols" ? optim::HeadAxis::kCols : optim::HeadAxis::kRows;
  heads.segment_heads = t[3].cast<std::vector<int64_t>>();
  if (t.size() > 4) heads.interleave = t[4].cast<int64_t>();
  try {
    heads.validate();
  } catch (const Error& e) {
    throw py::value_error(fmt::format("{}: {}", owner, e.what()));
  }
  return heads;
}

// A parameter's role, head layout and orientation from Python: role a
// ParamRole name ("matrix", "attn_qkv", "expert", ...); layout None or a
// head_layout_of tuple along the stored axes; transposed: stored [in, out]
// (transformers' Conv1D).
optim::TaggedParam tagged_param_of(const std::string& name, const torch::Tensor& param, const std::string& role,
                                   const py::object& layout, bool transposed) {
  optim::TaggedParam tag;
  tag.name = name;
  tag.tensor = param;
  tag.transposed = transposed;
  try {
    tag.role = optim::parse_param_role(role);
  } catch (const Error& e) {
    throw py::value_error(fmt::format("parameter '{}': {}", name, e.what()));
  }
  if (!layout.is_none()) {
    const auto t = layout.cast<py::tuple>();
    const optim::HeadLayout heads = head_layout_of(t, fmt::format("parameter '{}'", name));
    const int64_t extent = param.dim() == 2 ? param.size(heads.axis == optim::HeadAxis::kRows ? 0 : 1) : -1;
    if (extent != heads.num_heads * heads.head_dim) {
      throw py::value_error(fmt::format(
          "parameter '{}' of shape {}: head layout of {} heads x {} along the {} does not cover it (expected {} = "
          "heads x head size)",
          name, shape_string(param.sizes()), heads.num_heads, heads.head_dim, t[2].cast<std::string>(),
          extent));
    }
    tag.heads = heads;
  }
  return tag;
}

// Each head's rows (or columns) [begin, end) under a head_layout_of tuple,
// heads numbered segment by segment: where Group Muon reads them.
std::vector<std::pair<int64_t, int64_t>> head_ranges(const py::tuple& layout) {
  const optim::HeadLayout heads = head_layout_of(layout, "head layout");
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t head = 0; head < heads.num_heads; ++head) ranges.emplace_back(heads.begin_of(head), heads.end_of(head));
  return ranges;
}

// Runs `body`, turning muonlab's errors (bad input: shapes, layouts, states)
// into ValueError.
template <typename Body>
auto as_value_errors(Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    throw py::value_error(e.what());
  }
}

torch::Tensor state_tensor(const py::dict& state, const char* key) {
  if (!state.contains(key) || state[key].is_none()) return {};
  return state[key].cast<torch::Tensor>();
}

void check_muon_param(const torch::Tensor& param, const std::string& name, const py::dict& options,
                      const std::string& role, const py::object& layout, bool transposed) {
  const auto tag = tagged_param_of(name, param, role, layout, transposed);
  const auto muon = muon_options_from(options, false);
  as_value_errors([&] { optim::check_muon_param(param, name, muon, &tag); });
}

// The fresh state of a parameter: step 0 and zeros for every buffer.
py::dict muon_state(const torch::Tensor& param, const std::string& name, const py::dict& options,
                    const std::string& role, const py::object& layout, bool transposed) {
  const auto tag = tagged_param_of(name, param, role, layout, transposed);
  const auto muon = muon_options_from(options, false);
  return as_value_errors([&] {
    const auto view = optim::check_muon_param(param, name, muon, &tag);
    py::dict state;
    state["step"] = 0;
    state["momentum_buffer"] = torch::zeros_like(param, torch::MemoryFormat::Preserve);
    const auto sm = optim::second_moment_state_for(param, muon, view);
    if (sm.full.defined()) state["second_moment"] = sm.full;
    if (sm.row.defined()) state["second_moment_row"] = sm.row;
    if (sm.col.defined()) state["second_moment_col"] = sm.col;
    if (muon.neuron_norm()) state["neuron_second_moment"] = optim::make_neuron_state(param, view.out_in_shape());
    return state;
  });
}

// Refuses a loaded state that this parameter's options would not have made:
// a buffer missing, one more (another variant's), or a shape that differs.
void check_muon_state(const torch::Tensor& param, const std::string& name, const py::dict& options,
                      const std::string& role, const py::object& layout, bool transposed, const py::dict& state) {
  const auto tag = tagged_param_of(name, param, role, layout, transposed);
  const auto muon = muon_options_from(options, false);
  as_value_errors([&] {
    const auto view = optim::check_muon_param(param, name, muon, &tag);
    const auto shapes = optim::muon_state_shapes(param, muon, view);
    std::map<std::string, std::vector<int64_t>> expected(shapes.begin(), shapes.end());
    const std::string variant = optim::to_string(muon.second_moment());
    for (const auto& item : state) {
      const auto key = item.first.cast<std::string>();
      if (key == "step" || expected.count(key)) continue;
      fail("parameter '{}': the state holds buffer '{}', which this optimizer (second_moment = '{}') does not keep; "
           "was it saved by another Muon variant?",
           name, key, variant);
    }
    for (const auto& [key, shape] : expected) {
      const torch::Tensor buffer = state_tensor(state, key.c_str());
      if (!buffer.defined()) {
        fail("parameter '{}': the state has no buffer '{}', which this optimizer (second_moment = '{}') needs; "
             "was it saved by another Muon variant?",
             name, key, variant);
      }
      if (buffer.sizes() != c10::IntArrayRef(shape)) {
        fail("parameter '{}': state buffer '{}' has shape {}, expected {}", name, key, shape_string(buffer.sizes()),
             shape_string(shape));
      }
    }
    if (!state.contains("step") || !py::isinstance<py::int_>(state["step"])) {
      fail("parameter '{}': the state has no integer 'step'", name);
    }
  });
}

at::Generator& generator_of(const py::object& generator) {
  if (!THPGenerator_Check(generator.ptr())) throw py::type_error("expected a torch.Generator");
  return reinterpret_cast<THPGenerator*>(generator.ptr())->cdata;
}

// groups: [(options, [(name, param, state, role, layout, transposed, owned), ...]), ...]
// Parameters without a gradient are skipped. Each owned entry's state dict
// gets its buffers updated in place and its "step" raised by one, after the
// whole step succeeded. `graph` (a MuonStepGraph, or None) replays the
// step's first half where the options ask for cuda_graph and allow it.
void muon_step(const py::list& groups, const py::object& generator,
               std::shared_ptr<optim::MuonStepGraph> graph) {
  std::vector<optim::MuonOptions> options;
  options.reserve(groups.size());
  std::vector<optim::TaggedParam> tags;
  std::vector<py::dict> states;
  std::vector<optim::MuonSlot> slots;
  size_t entries = 0;
  for (const auto& group : groups) entries += py::len(group.cast<py::tuple>()[1]);
  tags.reserve(entries);
  for (const auto& group_handle : groups) {
    const auto group = group_handle.cast<py::tuple>();
    options.push_back(muon_options_from(group[0].cast<py::dict>(), false));
    for (const auto& entry_handle : group[1].cast<py::list>()) {
      const auto entry = entry_handle.cast<py::tuple>();
      const auto name = entry[0].cast<std::string>();
      const auto param = entry[1].cast<torch::Tensor>();
      const torch::Tensor grad = param.grad();
      if (!grad.defined()) continue;
      if (grad.is_sparse()) throw py::value_error(fmt::format("parameter '{}' has a sparse gradient: Muon needs dense", name));
      tags.push_back(tagged_param_of(name, param, entry[3].cast<std::string>(), entry[4], entry[5].cast<bool>()));
      optim::MuonSlot slot;
      slot.name = name;
      slot.param = param;
      slot.grad = grad;
      slot.options = &options.back();
      slot.tag = &tags.back();
      slot.owned = entry[6].cast<bool>();
      const auto state = entry[2].cast<py::dict>();
      if (slot.owned) {
        slot.step = state["step"].cast<int64_t>() + 1;
        slot.momentum_buffer = state_tensor(state, "momentum_buffer");
        slot.second_moment.full = state_tensor(state, "second_moment");
        slot.second_moment.row = state_tensor(state, "second_moment_row");
        slot.second_moment.col = state_tensor(state, "second_moment_col");
        slot.neuron_second_moment = state_tensor(state, "neuron_second_moment");
      }
      states.push_back(state);
      slots.push_back(std::move(slot));
    }
  }
  at::Generator& grouping_generator = generator_of(generator);
  {
    py::gil_scoped_release no_gil;
    torch::NoGradGuard no_grad;
    as_value_errors([&] { optim::muon_step(slots, grouping_generator, graph); });
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].owned) states[i]["step"] = slots[i].step;
  }
}

// entries: [(name, param, state), ...]; state holds step, exp_avg, exp_avg_sq.
// Every entry is checked before any changes; then the parameters take the
// C++ AdamW's multi-tensor step, batched by device, dtype and step count.
void adamw_step(const py::dict& group, const py::list& entries) {
  const auto options = adamw_options_from(group, false);
  torch::NoGradGuard no_grad;
  optim::AdamWBatches batches;
  std::vector<std::pair<py::dict, int64_t>> new_steps;
  for (const auto& entry_handle : entries) {
    const auto entry = entry_handle.cast<py::tuple>();
    auto param = entry[1].cast<torch::Tensor>();
    const torch::Tensor grad = param.grad();
    if (!grad.defined()) continue;
    const auto state = entry[2].cast<py::dict>();
    auto exp_avg = state_tensor(state, "exp_avg");
    auto exp_avg_sq = state_tensor(state, "exp_avg_sq");
    const auto name = entry[0].cast<std::string>();
    if (!exp_avg.defined() || !exp_avg_sq.defined() || exp_avg.sizes() != param.sizes() ||
        exp_avg_sq.sizes() != param.sizes()) {
      throw py::value_error(fmt::format("parameter '{}': AdamW state needs exp_avg and exp_avg_sq of shape {}", name,
                                        shape_string(param.sizes())));
    }
    const int64_t step = state["step"].cast<int64_t>() + 1;
    batches.add(param, grad, exp_avg, exp_avg_sq, step);
    new_steps.emplace_back(state, step);
  }
  batches.step_all(options);
  for (auto& [state, step] : new_steps) state["step"] = step;
}

// For the tests: `grads.size()` steps of the C++ optimizer classes
// (optim::Muon, optim::AdamW, their state in torch::optim's map) on copies
// of `params`, so the Python optimizers can be checked against them. tags:
// one (role, layout[, transposed]) per parameter.
std::vector<torch::Tensor> muon_class_steps(const py::dict& options, const std::vector<torch::Tensor>& params,
                                            const std::vector<std::vector<torch::Tensor>>& grads,
                                            const py::list& tags) {
  std::vector<optim::TaggedParam> tagged;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto tag = tags[i].cast<py::tuple>();
    tagged.push_back(tagged_param_of(fmt::format("p{}", i), params[i].detach().clone().set_requires_grad(true),
                                     tag[0].cast<std::string>(), tag[1], tag.size() > 2 && tag[2].cast<bool>()));
  }
  return as_value_errors([&] {
    optim::Muon muon(tagged, muon_options_from(options, false));
    for (const auto& step_grads : grads) {
      for (size_t i = 0; i < tagged.size(); ++i) tagged[i].tensor.mutable_grad() = step_grads[i].clone();
      muon.step();
    }
    std::vector<torch::Tensor> out;
    for (const auto& p : tagged) out.push_back(p.tensor.detach());
    return out;
  });
}

std::vector<torch::Tensor> adamw_class_steps(const py::dict& options, const std::vector<torch::Tensor>& params,
                                             const std::vector<std::vector<torch::Tensor>>& grads) {
  std::vector<torch::Tensor> copies;
  for (const auto& p : params) copies.push_back(p.detach().clone().set_requires_grad(true));
  optim::AdamW adamw(copies, adamw_options_from(options, false));
  for (const auto& step_grads : grads) {
    for (size_t i = 0; i < copies.size(); ++i) copies[i].mutable_grad() = step_grads[i].clone();
    adamw.step();
  }
  for (auto& p : copies) p = p.detach();
  return copies;
}

optim::NewtonSchulzConfig ns_config(int64_t steps, const py::object& coefficients, const std::string& dtype,
                                    const std::string& method = "standard", int64_t gram_restart = 2) {
  py::dict options;
  options["ns_steps"] = steps;
  options["ns_coefficients"] = coefficients;
  options["ns_dtype"] = dtype;
  options["ns_method"] = method;
  options["gram_restart"] = gram_restart;
  return muon_options_from(options, false).newton_schulz_config();
}

py::dict terms_dict(const muonlab::analysis::OneStepTerms& terms) {
  py::dict dict;
  dict["gain"] = terms.gain;
  dict["cost"] = terms.cost;
  return dict;
}

// The one-step descent comparison (docs/algorithms.md) of Group Muon's
// blocks of `group_size` heads against the whole weight, on the gradient G
// of an attention weight with head layout `layout` (a head_layout_of tuple
// along G's stored axes) and role `role`: the blocks the optimizer would
// cut, by `grouping`, with the projections `grouped`. None where the
// weight stays one block (not grouped, or every head in one group).
py::object one_step_diagnostics(const torch::Tensor& G, const std::string& role, const py::tuple& layout,
                                bool transposed, int64_t group_size, const std::string& grouping,
                                const std::vector<std::string>& grouped, const py::object& generator,
                                const optim::NewtonSchulzConfig& ns) {
  if (G.dim() != 2) throw py::value_error(fmt::format("G of shape {}: expected a matrix", shape_string(G.sizes())));
  if (group_size < 1) throw py::value_error(fmt::format("group_size = {}: expected heads per group >= 1", group_size));
  const auto tag = tagged_param_of("G", G, role, layout, transposed);
  const auto rule = as_value_errors([&] { return optim::parse_grouping_rule(grouping); });
  std::optional<torch::Generator> draws;
  if (rule == optim::GroupingRule::kRandom) {
    if (generator.is_none()) {
      throw py::value_error("grouping='random' draws its groups from `generator`: pass a torch.Generator (the same "
                            "seed gives the same groups)");
    }
    draws = generator_of(generator);
  }
  const auto projections = as_value_errors([&] { return optim::parse_grouped_projections(grouped); });
  const auto diagnostics = as_value_errors([&] {
    py::gil_scoped_release no_gil;
    return muonlab::analysis::grouped_one_step_diagnostics(tag, G.detach(), projections, group_size, rule, draws,
                                                           ns);
  });
  if (!diagnostics) return py::none();  // one block, the whole weight: nothing to compare
  py::dict result;
  result["ns"] = terms_dict(diagnostics->newton_schulz);
  result["exact"] = terms_dict(diagnostics->exact);
  return result;
}

py::dict spectrum_dict(const muonlab::analysis::SpectrumStats& stats) {
  py::dict dict;
  dict["rank"] = stats.rank;
  dict["s_max"] = stats.s_max;
  dict["s_min"] = stats.s_min;
  dict["condition"] = stats.condition;
  dict["spread_p90_p10"] = stats.spread_p90_p10;
  return dict;
}

// The Muon² paper's instrument on one pair (U, P): each one's spectrum and
// its alignment cos(NS_k(X), msign(X)) after k = 0..steps.
py::dict spectrum_alignment(const torch::Tensor& U, const torch::Tensor& P, const optim::NewtonSchulzConfig& ns) {
  const auto row = as_value_errors([&] {
    py::gil_scoped_release no_gil;
    return muonlab::analysis::spectrum_alignment("", U.detach(), P.detach(), ns);
  });
  py::dict result;
  result["before"] = spectrum_dict(row.before);
  result["after"] = spectrum_dict(row.after);
  result["muon"] = row.muon;
  result["muon2"] = row.muon2;
  return result;
}

muonlab::analysis::MuonInputTracker make_muon_input_tracker(const torch::Tensor& parameter, double momentum,
                                                            bool nesterov, const std::string& source,
                                                            const std::string& second_moment, double beta2,
                                                            double eps, bool bias_correction) {
  return as_value_errors([&] {
    muonlab::analysis::MuonInputOptions options;
    options.momentum = momentum;
    options.nesterov = nesterov;
    options.source = muonlab::analysis::parse_muon_input_source(source);
    options.second_moment.kind = optim::parse_second_moment_kind(second_moment);
    options.second_moment.beta2 = beta2;
    options.second_moment.eps = eps;
    options.second_moment.bias_correction = bias_correction;
    return muonlab::analysis::MuonInputTracker(parameter, options);
  });
}

// QK-clip (MuonClip) of one attention on the caller's own weights: rows of
// `query` and `key` ([heads * head_dim, in], or [in, heads * head_dim] when
// `transposed`) rescaled in place so that each head's logits are multiplied
// by gamma_h = tau / S_h where S_h > tau. Returns gamma.
torch::Tensor qk_clip(const torch::Tensor& max_logits, double tau, const torch::Tensor& query,
                      const torch::Tensor& key, const std::optional<torch::Tensor>& query_bias,
                      const std::optional<torch::Tensor>& key_bias, bool transposed) {
  if (!(std::isfinite(tau) && tau > 0)) {
    throw py::value_error(fmt::format("tau = {}: expected a finite logit bound > 0", tau));
  }
  if (max_logits.dim() != 1) {
    throw py::value_error(
        fmt::format("max_logits of shape {}: expected one per head, [H]", shape_string(max_logits.sizes())));
  }
  torch::NoGradGuard no_grad;
  const auto rows_of = [transposed](const torch::Tensor& weight) { return transposed ? weight.t() : weight; };
  optim::QueryKeyRows rows{rows_of(query), query_bias.value_or(torch::Tensor()), rows_of(key),
                           key_bias.value_or(torch::Tensor())};
  return as_value_errors([&] {
    const torch::Tensor gamma = optim::qk_clip_factors(max_logits, tau);
    optim::scale_head_logits(rows, gamma);
    return gamma;
  });
}

}  // namespace
}  // namespace muonlab::python

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  using namespace muonlab::python;
  m.doc() = "muonlab's C++ optimizers (Muon, Muon2, Muon2-F, Group Muon, AdamW) and Newton-Schulz instruments";
  m.def("muon_defaults", &muon_defaults, py::arg("variant") = "muon");
  m.def("adamw_defaults", &adamw_defaults);
  m.def(
      "check_muon_options", [](const py::dict& options) { muon_options_from(options, true); },
      "Raises ValueError naming the first unknown or invalid option");
  m.def(
      "check_adamw_options", [](const py::dict& options) { adamw_options_from(options, true); },
      "Raises ValueError naming the first unknown or invalid option");
  m.def("check_muon_param", &check_muon_param);
  m.def(
      "check_adamw_param",
      [](const torch::Tensor& param, const std::string& name) {
        as_value_errors([&] { optim::check_param_dtype(param, name, "AdamW"); });
      },
      "Raises ValueError for a parameter AdamW cannot step (complex, integer, or float16 on a CPU without float16 "
      "kernels)");
  m.def("muon_state", &muon_state);
  m.def("check_muon_state", &check_muon_state);
  m.def("head_ranges", &head_ranges, py::arg("layout"),
        "Each head's rows (or columns) [begin, end) under a layout tuple (num_heads, head_dim, axis, segments[, "
        "interleave]): where Group Muon reads them");
  py::class_<muonlab::optim::MuonStepGraph, std::shared_ptr<muonlab::optim::MuonStepGraph>>(
      m, "MuonStepGraph", "The CUDA graph a Muon optimizer with cuda_graph=True steps through, and its counts")
      .def(py::init<>())
      .def_property_readonly("eager_steps", &muonlab::optim::MuonStepGraph::eager_steps)
      .def_property_readonly("captures", &muonlab::optim::MuonStepGraph::captures)
      .def_property_readonly("replays", &muonlab::optim::MuonStepGraph::replays);
  m.def("muon_step", &muon_step, py::arg("groups"), py::arg("generator"), py::arg("graph") = nullptr);
  m.def("cuda_graphs_built", &muonlab::cuda_graphs_built,
        "Whether this extension was built with CUDA graphs (against a CUDA torch, with the CUDA runtime's headers)");
  m.def("adamw_step", &adamw_step);
  m.def(
      "first_nonfinite",
      [](const std::vector<torch::Tensor>& tensors) -> std::optional<size_t> {
        py::gil_scoped_release no_gil;
        return muonlab::optim::first_nonfinite(tensors);
      },
      py::arg("tensors"),
      "The index of the first tensor holding an inf or NaN, or None: CPU tensors read in place, "
      "device tensors in one sync");
  m.def(
      "newton_schulz",
      [](const torch::Tensor& G, int64_t steps, const py::object& coefficients, const std::string& dtype,
         const std::string& method, int64_t gram_restart) {
        const auto config = ns_config(steps, coefficients, dtype, method, gram_restart);
        return as_value_errors([&] { return muonlab::optim::newton_schulz(G, config); });
      },
      py::arg("G"), py::arg("steps") = 5, py::arg("coefficients") = "jordan", py::arg("dtype") = "auto",
      py::arg("method") = "standard", py::arg("gram_restart") = 2);
  m.def(
      "ns_schedule",
      [](const std::string& name) {
        const auto schedule = as_value_errors([&] { return muonlab::optim::ns_schedule(name); });
        py::list triples;
        for (const auto& t : schedule.triples) triples.append(py::make_tuple(t.a, t.b, t.c));
        return py::make_tuple(triples, schedule.norm_scale, schedule.eps);
      },
      py::arg("name"), "A preset's ([(a, b, c), ...], norm_scale, eps): 'jordan', 'taylor' or 'polar_express'");
  m.def(
      "polar_factor", [](const torch::Tensor& G) { return as_value_errors([&] { return muonlab::analysis::polar_factor(G); }); },
      py::arg("G"));
  m.def(
      "alignment",
      [](const torch::Tensor& G, int64_t steps, const py::object& coefficients, const std::string& dtype) {
        const auto config = ns_config(steps, coefficients, dtype);
        return as_value_errors([&] { return muonlab::analysis::ns_alignment(G, config); });
      },
      py::arg("G"), py::arg("steps") = 5, py::arg("coefficients") = "jordan", py::arg("dtype") = "fp32");
  m.def(
      "one_step_diagnostics",
      [](const torch::Tensor& G, const std::string& role, const py::tuple& layout, bool transposed,
         int64_t group_size, const std::string& grouping, const std::vector<std::string>& grouped,
         const py::object& generator, int64_t steps, const py::object& coefficients, const std::string& dtype) {
        return one_step_diagnostics(G, role, layout, transposed, group_size, grouping, grouped, generator,
                                    ns_config(steps, coefficients, dtype));
      },
      py::arg("G"), py::arg("role"), py::arg("layout"), py::arg("transposed"), py::arg("group_size"),
      py::arg("grouping"), py::arg("grouped"), py::arg("generator"), py::arg("steps"), py::arg("coefficients"),
      py::arg("dtype"),
      "{'ns': {'gain', 'cost'}, 'exact': {'gain', 'cost'}}: Group Muon's blocks against the whole weight, or None "
      "where it stays one block");
  m.def(
      "descent_difference",
      [](double gain, double cost, double eta, double beta) {
        return muonlab::analysis::descent_difference({gain, cost}, eta, beta);
      },
      py::arg("gain"), py::arg("cost"), py::arg("eta"), py::arg("beta"),
      "eta * gain - (beta eta^2 / 2) * cost: the change of the guaranteed one-step decrease; positive: grouping "
      "wins");
  m.def(
      "spectrum_alignment",
      [](const torch::Tensor& U, const torch::Tensor& P, int64_t steps, const py::object& coefficients,
         const std::string& dtype) { return spectrum_alignment(U, P, ns_config(steps, coefficients, dtype)); },
      py::arg("U"), py::arg("P"), py::arg("steps") = 5, py::arg("coefficients") = "jordan", py::arg("dtype") = "fp32",
      "{'before': spectrum of U, 'after': spectrum of P, 'muon': cos(NS_k(U), msign(U)), 'muon2': cos(NS_k(P), "
      "msign(P)) for k = 0..steps}; a spectrum is {rank, s_max, s_min, condition, spread_p90_p10}");
  using muonlab::analysis::MuonInputTracker;
  py::class_<MuonInputTracker>(m, "MuonInputTracker",
                               "Muon's input U and Muon2's input P = U / (sqrt(V_hat) + eps) of one matrix, built "
                               "from its gradients the way the optimizers build them, without changing it")
      .def(py::init(&make_muon_input_tracker), py::arg("parameter"), py::arg("momentum") = 0.95,
           py::arg("nesterov") = true, py::arg("source") = "momentum", py::arg("second_moment") = "full",
           py::arg("beta2") = 0.95, py::arg("eps") = 1e-8, py::arg("bias_correction") = true)
      .def(
          "add_gradient",
          [](MuonInputTracker& tracker, const torch::Tensor& grad) {
            as_value_errors([&] { tracker.add_gradient(grad); });
          },
          py::arg("grad"), "Folds one gradient into the momentum and the second moment")
      .def_property_readonly("steps", &MuonInputTracker::steps)
      .def_property_readonly(
          "muon_input", [](const MuonInputTracker& t) { return as_value_errors([&] { return t.muon_input(); }); },
          "U: the momentum-mixed update (source='momentum') or the last gradient (source='gradient')")
      .def_property_readonly(
          "muon2_input", [](const MuonInputTracker& t) { return as_value_errors([&] { return t.muon2_input(); }); },
          "P = U / (sqrt(V_hat) + eps), V over every gradient so far");
  m.def(
      "head_max_logits",
      [](const torch::Tensor& q, const torch::Tensor& k, double scale, bool causal) {
        return as_value_errors([&] { return muonlab::optim::head_max_logits(q, k, scale, causal); });
      },
      py::arg("q"), py::arg("k"), py::arg("scale"), py::arg("causal") = true,
      "Each head's largest logit q k^T * scale, [H] float32, for q [B, H, T, D] and k [B, H_kv, S, D]");
  m.def("qk_clip_", &qk_clip, py::arg("max_logits"), py::arg("tau"), py::arg("query"), py::arg("key"),
        py::arg("query_bias") = py::none(), py::arg("key_bias") = py::none(), py::arg("transposed") = false,
        "QK-clip (MuonClip) in place: each head above tau gets its logits times tau / S_h; returns the factors");
  m.def("_muon_class_steps", &muon_class_steps, "tests only: the C++ Muon class over copies of params");
  m.def("_adamw_class_steps", &adamw_class_steps, "tests only: the C++ AdamW class over copies of params");
  m.def(
      "auto_ns_dtype",
      [](const std::string& device) {
        return muonlab::short_dtype_name(muonlab::optim::resolve_ns_dtype(muonlab::optim::NsDtype::kAuto, torch::Device(device)));
      },
      py::arg("device"), "What ns_dtype='auto' chooses on the device: 'bf16' or 'fp32'");
  m.def(
      "openmp_runtime",
      [] {
        const muonlab::OpenMpRuntime runtime = muonlab::openmp_runtime();
        return std::make_pair(runtime.library, runtime.shared_with_torch);
      },
      "(library, shared_with_torch): the OpenMP runtime muonlab's CPU loops run on, and whether "
      "torch.set_num_threads reaches it (a probe: it sets torch's thread count and restores it)");
  m.def(
      "openmp_wait", [] { return muonlab::describe_openmp_wait(std::getenv); },
      "How this process's idle OpenMP threads wait, and who chose it: libgomp reads GOMP_SPINCOUNT and "
      "OMP_WAIT_POLICY when Python loads it, so set them before starting Python");
  m.def("version", [] { return std::string(MUONLAB_VERSION); });
  m.def("torch_version", [] { return std::string(TORCH_VERSION); });
}
