"""muonlab's optimizers under Hugging Face's Trainer, where transformers
and accelerate are installed: MuonWithAuxAdamW over param_groups(model) of
a tiny GPT2LMHeadModel (Conv1D weights, marked transposed) and a tiny
GPTNeoXForCausalLM (interleaved query_key_value, Group Muon) trains through
Trainer(optimizers=(opt, None)) with Trainer's own LR schedule, gradient
clipping and checkpoints, and a run resumed from a checkpoint ends on the
same weights as the run that never stopped."""
import pytest
import torch

from muonlab.optim import MuonWithAuxAdamW, param_groups

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")


class Tokens(torch.utils.data.Dataset):
    def __init__(self, count=16, length=12):
        generator = torch.Generator().manual_seed(3)
        self.rows = [torch.randint(0, 64, (length,), generator=generator) for _ in range(count)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


def tiny_model(family):
    if family == "gpt2":
        return transformers.GPT2LMHeadModel(
            transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=4))
    return transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=16))


def trainer(out_dir, options, family="gpt2"):
    torch.manual_seed(0)
    model = tiny_model(family)
    args = transformers.TrainingArguments(
        output_dir=str(out_dir), max_steps=6, per_device_train_batch_size=4, learning_rate=1.0,
        lr_scheduler_type="linear", warmup_steps=2, save_strategy="steps", save_steps=3, logging_steps=1,
        report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True)
    opt = MuonWithAuxAdamW(param_groups(model, lr=0.02, adamw_lr=3e-3, **options))
    return transformers.Trainer(model=model, args=args, train_dataset=Tokens(), optimizers=(opt, None))


@pytest.mark.parametrize("family, options", [
    ("gpt2", {}), ("gpt2", {"group_size": 2, "neuron_norm": True}),
    ("gpt_neox", {"group_size": 2, "grouping": "random"}),  # interleaved query_key_value, a seeded grouping
], ids=["gpt2-muon", "gpt2-group-normuon", "gpt_neox-group-random"])
def test_trainer_trains_and_resumes_exactly(tmp_path, family, options):
    whole = trainer(tmp_path / "whole", options, family)
    result = whole.train()
    losses = [entry["loss"] for entry in whole.state.log_history if "loss" in entry]
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    groups = whole.optimizer.optimizer.param_groups if hasattr(whole.optimizer, "optimizer") else \
        whole.optimizer.param_groups
    assert groups[0]["lr"] == 0.0  # Trainer's linear schedule reached its end
    if family == "gpt2":
        assert groups[0]["transposed"]
    else:
        assert ("qkv", 12, 8, (4, 4, 4), 4) in groups[0]["heads"]
    assert result.global_step == 6

    resumed = trainer(tmp_path / "resumed", options, family)
    resumed.train(resume_from_checkpoint=str(tmp_path / "whole" / "checkpoint-3"))
    for (name, a), b in zip(whole.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(a, b), name
