import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from trl_icrl import build_tiny_model
from trl_icrl.tiny_model import TINY_BASE_DIR, protocol_vocabulary, resolve_model_path


def test_round_trip_gives_identical_logits_offline(tmp_path):
    path = build_tiny_model(tmp_path / "tiny", seed=3)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert isinstance(model, LlamaForCausalLM)
    # 1.05M in the body and the words of the compact format, 0.5M in the step format's words
    assert 1.4e6 < sum(p.numel() for p in model.parameters()) < 1.7e6
    ids = tokenizer("<ep> r0 c0 right r0 c1 down 1.0 </ep>", return_tensors="pt")["input_ids"]
    assert tokenizer.unk_token_id not in ids[0].tolist()
    again = build_tiny_model(tmp_path / "again", seed=3)  # seeded: the same weights on any machine
    with torch.no_grad():
        logits = model(ids).logits
        assert torch.equal(logits, AutoModelForCausalLM.from_pretrained(path)(ids).logits)
        assert torch.equal(logits, AutoModelForCausalLM.from_pretrained(again)(ids).logits)


def test_vocabulary_covers_every_known_env_and_resolves_tiny():
    words = protocol_vocabulary()
    assert len(words) == len(set(words))
    assert {"r9", "c9", "99", "499", "pickup", "-100.0", "<trunc>"} <= set(words)
    assert resolve_model_path("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
    assert resolve_model_path("tiny") == resolve_model_path("trl-icrl/tiny-llama") == str(TINY_BASE_DIR)
    assert resolve_model_path("tiny-random").endswith("trl-icrl-tiny-llama")
