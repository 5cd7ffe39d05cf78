// What a parameter is in the model, and so which optimizer takes it. Muon is
// for hidden 2-D matrices only; embeddings, the output head, norm gains,
// biases and scalars go to AdamW. Routing is by role, not by shape alone:
// the embedding is 2-D too.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace muonlab::optim {

enum class ParamRole {
  kMatrix,     // a hidden linear layer with no finer role
  kEmbedding,  // token or position embedding
  kHead,       // output projection to the vocabulary
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnO,
  kAttnQKV,    // fused Q, K, V projection
  kMlaDown,    // MLA down-projections (to the latents)
  kMlaUp,      // MLA up-projections (from the latents)
  kMlp,
  kExpert,     // MoE experts' matrices, one or a stack [E, out, in]
  kRouter,     // MoE router (AdamW: its rows are per-expert logits, not a hidden map)
  kNorm,       // LayerNorm / RMSNorm gain
  kBias,
  kScalar,     // any other vector or scalar
};
std::string to_string(ParamRole role);
ParamRole parse_param_role(const std::string& name);

// Which axis of an attention weight indexes the heads. Q/K/V projections
// (out x in) stack their heads along the rows; the output projection reads
// them along its columns.
enum class HeadAxis { kRows, kCols };
std::string to_string(HeadAxis axis);

// How the heads of an attention weight are laid out, so that Group Muon can
// cut a matrix into head blocks without knowing the module. A fused QKV
// weight has segment_heads = {H, H_kv, H_kv}: its rows are first the H query
// heads, then the key heads, then the value heads, all of size head_dim.
//
// With interleave = I > 1 the segments are dealt into I repeated units
// instead: unit u holds segment 0's heads [u n0/I, (u+1) n0/I), then
// segment 1's, and so on. GPT-NeoX's and BLOOM's query_key_value is
// {H, H, H} with I = H (each head's q, k, v rows together); Falcon's
// grouped-query query_key_value is {H, H_kv, H_kv} with I = H_kv. Heads are
// still numbered segment by segment, so grouping reads the same either way.
struct HeadLayout {
  int64_t num_heads = 0;  // in total, over all segments
  int64_t head_dim = 0;
  HeadAxis axis = HeadAxis::kRows;
  std::vector<int64_t> segment_heads;  // empty: one segment of num_heads
  int64_t interleave = 1;              // units the segments are dealt into; 1: one after another

  // Fails naming the numbers unless the sizes are positive, the segments add
  // up to num_heads and interleave divides each of them.
  void validate() const;
  // The rows (or columns) [begin, end) of head `head` (numbered segment by
  // segment) of a valid layout.
  int64_t begin_of(int64_t head) const;
  int64_t end_of(int64_t head) const { return begin_of(head) + head_dim; }
};

// A parameter with its name and role. exclude_from_muon marks a matrix that
// must go to AdamW although its role would allow Muon. Models fill in the
// head layout of attention weights and the block index; untagged models
// (tag_parameters) leave them unset.
struct TaggedParam {
  std::string name;
  torch::Tensor tensor;
  ParamRole role = ParamRole::kMatrix;
  bool exclude_from_muon = false;
  std::optional<HeadLayout> heads;
  int64_t layer = -1;  // transformer block, -1 outside the blocks
  // Stored [in, out] (or [..., in, out] for a stack), the transpose of
  // torch::nn::Linear's [out, in]: Hugging Face GPT-2's Conv1D. Muon reads
  // the output and input sizes the other way round (matrix_view.h).
  bool transposed = false;
};

// Role from a parameter's name and shape, for models that do not tag their
// parameters: biases and 1-D gains by name and rank, embeddings
// ("wte", "wpe", "embed", "tok_emb", "pos_emb") and heads ("lm_head",
// "output") by name; every other 2-D parameter is a hidden matrix.
ParamRole infer_param_role(const std::string& name, const torch::Tensor& tensor);
std::vector<TaggedParam> tag_parameters(
    const torch::OrderedDict<std::string, torch::Tensor>& named);

// The tensors and the name -> tensor dictionary of tagged parameters.
std::vector<torch::Tensor> tensors_of(const std::vector<TaggedParam>& tagged);
torch::OrderedDict<std::string, torch::Tensor> names_of(const std::vector<TaggedParam>& tagged);

enum class OptimizerChoice { kMuon, kAdamW };
std::string to_string(OptimizerChoice choice);

// Empty if Muon may take the parameter, else the reason it may not.
std::string why_not_muon(const TaggedParam& param);
OptimizerChoice route(const TaggedParam& param);

}  // namespace muonlab::optim
