from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Max

from config import cli
from newsletter.models import Subscriber
from papers.ingest import ingest_run
from papers.models import Paper, Source
from papers.sources.hf import parse_files

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "papers" / "sample"
DEMO_EMAIL = "reader@example.org"


class Command(cli.Command):
    help = (
        "Set up a demo: migrate, load the bundled week of real Hugging Face daily papers, "
        "create an admin login (printed), subscribe a demo reader and send their digest to "
        "the configured outbox (var/outbox/ by default)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        files = sorted(SAMPLE_DIR.glob("*.json"))
        run = ingest_run(source=Source.HF, fetch=lambda: parse_files(files), detail="demo sample")
        self.stdout.write(
            f"Loaded {len(files)} days of papers: {run.created_count} new, "
            f"{run.updated_count} updated, {Paper.objects.count()} in the catalogue"
        )
        password = self.admin_login()
        digest_date = self.demo_reader()
        call_command("send_digests", "--date", digest_date.isoformat(), stdout=self.stdout)
        outbox = Path(settings.EMAIL_FILE_PATH)
        latest = max(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, default=None)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        if latest and settings.EMAIL_PROVIDER == "file":
            self.stdout.write(f"  Digest for {DEMO_EMAIL}: {latest}")
        self.stdout.write(f"  Site:  {settings.SITE_URL}/")
        self.stdout.write(f"  Admin: {settings.SITE_URL}/admin/  user: admin  password: {password}")

    def admin_login(self) -> str:
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"email": "admin@example.org"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password

    def demo_reader(self) -> Any:
        """A weekly reader whose digest day is the Monday after the sample week, so the
        digest covers the whole week. Re-running the demo sends it again."""
        last = Paper.objects.aggregate(last=Max("catalogue_date"))["last"]
        digest_date = last + timedelta(days=7 - last.weekday())
        Subscriber.objects.filter(email=DEMO_EMAIL).delete()
        call_command(
            "subscribe",
            DEMO_EMAIL,
            topic=["agents", "reasoning", "multimodal"],
            keywords="video generation, reinforcement learning",
            frequency="weekly",
            max=8,
            confirmed=True,
            stdout=self.stdout,
        )
        return digest_date
