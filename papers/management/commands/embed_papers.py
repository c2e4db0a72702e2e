"""manage.py embed_papers: compute the papers' sentence embeddings."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError
from tqdm import tqdm

from config import cli
from papers.embedding import EmbeddingError, encoder, model_name, papers_embed
from papers.models import Paper


class Command(cli.Command):
    help = (
        "Compute the sentence embedding of every paper that has none, or one made by "
        "another model (after a change of PAPERBOY_EMBEDDING_MODEL). Ingest does this for "
        "new papers on its own; --all recomputes every paper. Resumable: an interrupted "
        "run keeps what it finished."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="Recompute every paper, not only missing ones."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        everything = options["all"]
        try:
            encoder()  # a bad setting is an error even with nothing to embed
        except EmbeddingError as exc:
            raise CommandError(str(exc)) from None
        name = model_name()
        todo = (
            Paper.objects.count()
            if everything
            else Paper.objects.exclude(embedding_model=name).count()
        )
        bar = tqdm(
            total=todo, desc=f"embedding ({name})", unit="paper", disable=not sys.stderr.isatty()
        )
        try:
            done = papers_embed(everything=everything, progress=bar.update)
        except EmbeddingError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(f"{done} papers embedded with {name}")
