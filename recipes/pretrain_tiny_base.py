"""Pretrain the embedded base: the tiny Llama learns to predict histories of random play (next-token prediction).

    python recipes/pretrain_tiny_base.py --config recipes/configs/tiny_base.yaml
    python recipes/pretrain_tiny_base.py --config recipes/configs/tiny_base.yaml --output_dir trl_icrl/models/tiny-llama
    python recipes/pretrain_tiny_base.py --config recipes/configs/tiny_general_base.yaml

The corpus is random play on training maps (never a map any evaluation plays; ``trl_icrl.pretraining``) of one env
or, with ``--env_ids``, of several in equal shares; ``--init_from tiny`` continues from the shipped base instead of
a random initialisation, its vocabulary grown by the words of the envs it lacks. The base it writes (weights,
tokenizer, a card that states the corpus and the losses) is what ``"tiny"`` / ``trl-icrl/tiny-llama`` (or
``"tiny-general"`` / ``trl-icrl/tiny-llama-general``) loads once it sits in ``trl_icrl/models/tiny-llama``
(``tiny-llama-general``). ``--push_to_hub true --hub_model_id NAME`` uploads it.
"""

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from huggingface_hub import HfApi
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)
from trl import TrlParser

from trl_icrl.envs import ENV_ID
from trl_icrl.envs.codec import codec_for
from trl_icrl.precision import cpu_bf16_units
from trl_icrl.pretraining import corpus_families, mixture_corpus, random_play_corpus, write_base_card
from trl_icrl.tiny_model import TINY_BASE_NAME, build_tokenizer, init_tiny_model, resolve_model_path
from trl_icrl.vocabulary import extend_vocabulary, words_to_add


@dataclass
class CorpusArguments:
    env_ids: list[str] = field(default_factory=lambda: [ENV_ID], metadata={
        "help": "Envs with generated maps whose random play makes the corpus, in equal shares."})
    map_families: list[str] | None = field(default=None, metadata={
        "help": "The family of maps of each env id (default: each env's first)."})
    init_from: str | None = field(default=None, metadata={
        "help": "A base to continue from ('tiny': the shipped one); default: a random initialisation."})
    base_name: str = field(default=TINY_BASE_NAME, metadata={"help": "The name the base's card gives it."})
    corpus_trials: int = field(default=20_000, metadata={"help": "Trials of random play in the corpus."})
    eval_trials: int = field(default=256, metadata={"help": "Trials of the corpus held out for the eval loss."})
    context_tokens: int = field(default=1280, metadata={"help": "Tokens per trial (the evaluation's context)."})
    coordinate_frame: int = field(default=7, metadata={"help": "Maps at random offsets in a frame this wide."})
    coordinate_frame_share: float = field(default=0.5, metadata={"help": "Share of trials at an offset."})
    map_switches: float = field(default=0.5, metadata={"help": "Share of trials that switch maps mid-trial."})
    corpus_seed: int = field(default=0, metadata={"help": "Seed of the corpus's maps and actions."})
    reserved_seeds: int = field(default=5, metadata={
        "help": "Maps reserved for evaluation under seeds 0..N-1 are excluded from the corpus."})
    num_proc: int = field(default=1, metadata={"help": "Processes that make the corpus."})
    init_seed: int = field(default=0, metadata={"help": "Seed of the model's random initialisation."})


def main() -> None:
    corpus_args, args = TrlParser((CorpusArguments, TrainingArguments)).parse_args_and_config()
    families = corpus_families(corpus_args.env_ids, corpus_args.map_families)
    start = time.time()
    if corpus_args.init_from:
        path = resolve_model_path(corpus_args.init_from)
        tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    else:
        tokenizer = build_tokenizer()
        model = init_tiny_model(tokenizer, seed=corpus_args.init_seed)
    codecs = [codec_for(env_id) for env_id in corpus_args.env_ids]
    new_words = [word for codec in codecs for word in words_to_add(tokenizer, "step", codec)]
    tokenizer = extend_vocabulary(model, tokenizer, new_words)
    kwargs = dict(context_tokens=corpus_args.context_tokens, coordinate_frame=corpus_args.coordinate_frame,
                  coordinate_frame_share=corpus_args.coordinate_frame_share, map_switches=corpus_args.map_switches,
                  seed=corpus_args.corpus_seed, reserved_seeds=corpus_args.reserved_seeds,
                  num_proc=corpus_args.num_proc)
    n_trials = corpus_args.corpus_trials + corpus_args.eval_trials
    if len(families) == 1:
        (env_id, family), = families.items()
        corpus = random_play_corpus(tokenizer, n_trials, env_id=env_id, family=family, **kwargs)
    else:
        corpus = mixture_corpus(tokenizer, n_trials, families, **kwargs).remove_columns("env_id")
    corpus_minutes = (time.time() - start) / 60
    split = corpus.remove_columns("env_map").train_test_split(test_size=corpus_args.eval_trials, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=split["train"], eval_dataset=split["test"],
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
                      processing_class=tokenizer)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    train_minutes = (time.time() - start) / 60 - corpus_minutes
    output_dir = Path(args.output_dir)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    units = ", ".join(cpu_bf16_units()) or "no bf16 units"
    threads = torch.get_num_threads()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({units}), {threads} threads"
    stats = {"corpus": asdict(corpus_args), "corpus_tokens": int(sum(map(len, corpus["input_ids"]))),
             "optimizer_steps": trainer.state.global_step, "eval_loss_before": before, "eval_loss_after": after,
             "corpus_minutes": round(corpus_minutes, 2), "train_minutes": round(train_minutes, 2), "device": device,
             "learning_rate": args.learning_rate, "batch_size": args.per_device_train_batch_size * args.world_size,
             "command": " ".join(sys.argv[1:]), "log_history": trainer.state.log_history}
    (output_dir / "pretraining.json").write_text(json.dumps(stats, indent=2))
    write_base_card(output_dir, stats, args.hub_model_id or corpus_args.base_name)
    print(f"eval loss {before:.3f} -> {after:.3f} after {trainer.state.global_step} steps; corpus "
          f"{corpus_minutes:.1f} min, training {train_minutes:.1f} min on {device}; written to {output_dir.resolve()}")
    if args.push_to_hub:
        url = HfApi(token=args.hub_token).create_repo(args.hub_model_id, exist_ok=True, private=args.hub_private_repo)
        HfApi(token=args.hub_token).upload_folder(folder_path=output_dir, repo_id=url.repo_id)
        print(f"pushed to {url}")


if __name__ == "__main__":
    main()
