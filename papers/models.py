from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Source(models.TextChoices):
    HF = "hf", "Hugging Face daily papers"
    ARXIV = "arxiv", "arXiv"
    JSONL = "jsonl", "JSON Lines import"


class Paper(models.Model):
    """One paper, keyed by its arXiv id, whatever source brought it in."""

    arxiv_id = models.CharField(max_length=32, unique=True, help_text="For example 2501.19393.")
    title = models.TextField(help_text="Readable title as shown in emails (LaTeX converted).")
    title_raw = models.TextField(blank=True, help_text="The title as the source sent it.")
    abstract = models.TextField(blank=True, help_text="Readable abstract (LaTeX converted).")
    abstract_raw = models.TextField(blank=True, help_text="The abstract as the source sent it.")
    ai_summary = models.TextField(blank=True, help_text="Hugging Face's one-line AI summary.")
    ai_keywords = models.JSONField(default=list, blank=True, help_text="Hugging Face keywords.")
    authors = models.JSONField(default=list, blank=True, help_text="Author names, in order.")
    organization = models.CharField(max_length=200, blank=True)
    categories = models.JSONField(default=list, blank=True, help_text="arXiv categories.")
    published_at = models.DateTimeField(null=True, blank=True, help_text="First arXiv version.")
    featured_on = models.DateField(
        null=True, blank=True, help_text="The Hugging Face daily-papers date that listed it."
    )
    announced_on = models.DateField(null=True, blank=True, help_text="arXiv announcement date.")
    catalogue_date = models.DateField(
        help_text="The date that decides which digest carries it: featured_on, else announced_on."
    )
    upvotes = models.PositiveIntegerField(default=0)
    num_comments = models.PositiveIntegerField(default=0)
    github_repo = models.URLField(max_length=500, blank=True)
    github_stars = models.PositiveIntegerField(null=True, blank=True)
    project_page = models.URLField(max_length=500, blank=True)
    thumbnail = models.URLField(max_length=500, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.HF)
    embedding = models.BinaryField(
        null=True, editable=False, help_text="Sentence embedding of title and abstract (float16)."
    )
    embedding_model = models.CharField(
        max_length=100, blank=True, editable=False, help_text="The model that made the embedding."
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Planning: the candidates of a digest period, most upvoted first.
            models.Index(fields=["catalogue_date", "-upvotes"], name="paper_catalogue_idx"),
            # embed_papers and the ingest tasks: papers whose vector is missing or stale.
            models.Index(fields=["embedding_model"], name="paper_embedding_model_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.arxiv_id} {self.title[:80]}"

    @property
    def hf_url(self) -> str:
        return f"https://huggingface.co/papers/{self.arxiv_id}"

    @property
    def arxiv_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}"


class IngestRun(models.Model):
    """One run of one source: what it fetched, created, updated and skipped, and why."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    source = models.CharField(max_length=8, choices=Source.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    window_start = models.DateField(null=True, blank=True)
    window_end = models.DateField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True, help_text="Files or query used.")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True, help_text="[{id, reason}] per record.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # The admin's "running now" filter and the overlap check of ingest tasks.
            models.Index(
                fields=["source"], name="ingestrun_running_idx", condition=Q(status="running")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.started_at:%Y-%m-%d %H:%M} {self.status}"
