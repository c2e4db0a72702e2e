from __future__ import annotations

import functools
import re
from typing import Any

from django import forms
from django.forms.boundfield import BoundWidget
from django.forms.renderers import BaseRenderer
from django.utils import timezone
from django.utils.choices import CallableChoiceIterator
from django.utils.safestring import SafeString

from newsletter.abuse import AddressField, GuardedForm
from newsletter.models import (
    ARXIV_ID,
    LAST_HOUR,
    MAX_PAPERS,
    MIN_PAPERS,
    Subscriber,
    Topic,
    arxiv_ids,
    known_timezones,
    topics_by_id,
    validate_authors,
    validate_liked_papers,
)
from newsletter.subscriptions import Preferences
from papers.models import Paper

# The zones offered in lists: places (Area/City) and UTC. Legacy aliases (ROK, W-SU, Zulu,
# UCT, US/Samoa, Etc/GMT+5, ...) are still accepted, and a reader who has one sees it.
AREAS = (
    "Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/",
    "Europe/", "Indian/", "Pacific/",
)  # fmt: skip
TIMEZONES = [
    (name, name.replace("_", " "))
    for name in sorted(known_timezones())
    if name.startswith(AREAS) or name == "UTC"
]
LISTED = frozenset(name for name, _ in TIMEZONES)
WEEKDAYS = list(
    enumerate(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])
)


HOURS = [(h, f"{h:02d}:00") for h in range(LAST_HOUR + 1)]

# As iterators, choice lists are walked only when they are rendered, not copied each
# time a form is built (every signup post builds one).
ZONE_CHOICES = CallableChoiceIterator(lambda: TIMEZONES)
WEEKDAY_CHOICES = CallableChoiceIterator(lambda: WEEKDAYS)
HOUR_CHOICES = CallableChoiceIterator(lambda: HOURS)
FREQUENCY_CHOICES = CallableChoiceIterator(lambda: Subscriber.Frequency.choices)


class ZoneSelect(forms.Select):
    """The time zone list. Django renders each of its ~600 options through a template,
    about 20 ms a page (most of the front page's time); the list never changes while the
    process runs, so each process keeps its 64 latest renderings, per selected zone and
    attributes. A value that is no zone selects nothing, as it would anyway."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, choices=ZONE_CHOICES)

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        zone = value if isinstance(value, str) and value in known_timezones() else None
        final_attrs = tuple(self.build_attrs(self.attrs, attrs).items())
        return _zone_select(name, zone, final_attrs, renderer)


@functools.lru_cache(maxsize=64)
def _zone_select(
    name: str, zone: str | None, attrs: tuple[tuple[str, Any], ...], renderer: BaseRenderer | None
) -> SafeString:
    choices: Any = ZONE_CHOICES
    if zone is not None and zone not in LISTED:  # a legacy alias the reader already has
        choices = [(zone, zone.replace("_", " ")), *TIMEZONES]
    return forms.Select(choices=choices).render(name, zone, dict(attrs), renderer)


class TopicsField(forms.ModelMultipleChoiceField):
    """Topic checkboxes whose answers are checked against the process's copy of the
    catalogue (``topics_by_id``) instead of a query per post; the cleaned value is the
    list of topics chosen."""

    def _check_values(self, value: Any) -> list[Topic]:
        catalogue = topics_by_id()
        chosen: dict[int, Topic] = {}
        for pk in value:
            try:
                topic = catalogue.get(int(str(pk)))
            except ValueError:
                topic = None
            if topic is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
            chosen[topic.pk] = topic
        return list(chosen.values())


class PreferenceFields(forms.ModelForm):
    """The preferences and their checks, shared by the signup form and the manage page."""

    authors_text = forms.CharField(
        label="Authors to follow",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One name per line, as written on arXiv.",
        max_length=2000,
    )

    liked_text = forms.CharField(
        label="Papers you like",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="arXiv ids or links, one per line: they count as thumbs up from the start.",
        max_length=2000,
    )

    class Meta:
        model = Subscriber
        fields = [
            "topics",
            "keywords",
            "frequency",
            "weekly_day",
            "send_hour",
            "timezone",
            "max_papers",
        ]
        field_classes = {"topics": TopicsField}
        widgets = {
            "topics": forms.CheckboxSelectMultiple,
            "keywords": forms.Textarea(attrs={"rows": 3}),
            "frequency": forms.RadioSelect(choices=FREQUENCY_CHOICES),
            "weekly_day": forms.Select(choices=WEEKDAY_CHOICES),
            "send_hour": forms.Select(choices=HOUR_CHOICES),
            "timezone": ZoneSelect(),
        }
        labels = {
            "keywords": "Your interests",
            "frequency": "How often",
            "weekly_day": "Weekly digest day",
            "send_hour": "Send at (your local time)",
            "timezone": "Time zone",
            "max_papers": "Papers per digest",
        }
        help_texts = {
            "keywords": 'Keywords or a sentence, comma-separated: "KV cache, speculative '
            'decoding" or "making LLMs cheaper to run on small devices".',
            "weekly_day": "For a weekly digest only.",
            "send_hour": "",
            "max_papers": f"{MIN_PAPERS} to {MAX_PAPERS}.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The box offers what the model takes (the field alone would say min="0").
        self.fields["max_papers"].widget.attrs.update(min=MIN_PAPERS, max=MAX_PAPERS)

    def clean_authors_text(self) -> list[str]:
        names = [" ".join(n.split()) for n in self.cleaned_data["authors_text"].splitlines()]
        names = list(dict.fromkeys(n for n in names if n))
        validate_authors(names)
        return names

    def clean_liked_text(self) -> list[str]:
        text = self.cleaned_data["liked_text"]
        ids = list(dict.fromkeys(arxiv_ids(text)))
        leftover = ARXIV_ID.sub(" ", text)
        leftover = re.sub(r"https?://\S*|arxiv\.org\S*|huggingface\.co\S*|[\s,;/]+", " ", leftover)
        if leftover.strip():
            raise forms.ValidationError(
                f"{leftover.split()[0][:40]!r} is not an arXiv id or link (for example 2501.12345)."
            )
        validate_liked_papers(ids)
        known = (
            set(Paper.objects.filter(arxiv_id__in=ids).values_list("arxiv_id", flat=True))
            if ids
            else set()
        )
        missing = [i for i in ids if i not in known]
        if missing:
            more = " and others" if len(missing) > 3 else ""
            raise forms.ValidationError(
                f"Paperboy has not seen {', '.join(missing[:3])}{more} yet: name papers "
                "from Hugging Face Daily Papers or recent arXiv listings."
            )
        return ids

    def clean_keywords(self) -> str:
        return str(self.cleaned_data["keywords"]).strip()  # the model's validator limits it

    def topic_groups(self) -> list[tuple[str, list[BoundWidget]]]:
        """The topic checkboxes grouped by area, in catalogue order."""
        groups: dict[str, list[BoundWidget]] = {}
        for choice in self["topics"]:
            topic = choice.data["value"].instance
            groups.setdefault(topic.area or "Other", []).append(choice)
        return list(groups.items())


class PreferencesForm(PreferenceFields):
    """Everything a reader can change through their manage link."""

    field_order = ["topics", "keywords", "authors_text", "liked_text", "frequency", "weekly_day"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["authors_text"] = "\n".join(self.instance.authors)
            self.initial["liked_text"] = "\n".join(self.instance.liked_papers)

    def save(self, commit: bool = True) -> Subscriber:
        """Writes only the preferences: a status or token version changed meanwhile (a
        bounce, "sign out my links") is never overwritten with the one read earlier."""
        self.instance.authors = self.cleaned_data["authors_text"]
        self.instance.liked_papers = self.cleaned_data["liked_text"]
        self.instance.updated = timezone.now()
        if not commit:
            return super().save(commit=False)
        fields = [f for f in self._meta.fields or () if f != "topics"]
        self.instance.save(update_fields=[*fields, "authors", "liked_papers", "updated"])
        self._save_m2m()  # type: ignore[attr-defined]
        return self.instance


# Posted without them (an old page, a script), these get the model's defaults.
OPTIONAL_ON_SIGNUP = ("frequency", "weekly_day", "send_hour", "timezone", "max_papers")


class SignupForm(GuardedForm, PreferenceFields):
    """The public signup form: an address and every preference, a honeypot and a stamp.

    It never saves: ``preferences()`` goes to ``subscriber_signup``, which stores them
    for a new address only. The model's checks on the address (unique) are left out, so
    the form says nothing about whether an address is subscribed.
    """

    email = AddressField()

    field_order = [
        "email",
        "topics",
        "keywords",
        "authors_text",
        "liked_text",
        "frequency",
        "weekly_day",
    ]

    class Meta(PreferenceFields.Meta):
        # Inside the "Your interests" group the field needs no second "Your interests".
        labels = {**PreferenceFields.Meta.labels, "keywords": "Keywords or a sentence"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            # The browser's own zone is picked by a script (static/paperboy/timezone.js)
            # on a fresh form; without it, the reader picks one from the list.
            self.fields["timezone"].widget.attrs["data-detect-timezone"] = "true"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Sent back empty (a cleared number box, a script), an optional preference gets
        # the model's default as if it had not been sent: never a blank time zone or
        # frequency, never a NULL that makes the signup fail unseen.
        for name in OPTIONAL_ON_SIGNUP:
            if cleaned.get(name) in self.fields[name].empty_values:
                cleaned.pop(name, None)
        return cleaned

    def preferences(self) -> Preferences:
        """After is_valid(): what a new subscriber starts with."""
        subscriber = self.instance  # the model's defaults for anything not posted
        return Preferences(
            keywords=subscriber.keywords,
            authors=self.cleaned_data["authors_text"],
            liked_papers=self.cleaned_data["liked_text"],
            frequency=subscriber.frequency,
            weekly_day=subscriber.weekly_day,
            send_hour=subscriber.send_hour,
            timezone=subscriber.timezone,
            max_papers=subscriber.max_papers,
        )


# Once for the class, not on every form built: each form gets its own copy.
for _name in OPTIONAL_ON_SIGNUP:
    SignupForm.base_fields[_name].required = False


class ResendConfirmationForm(GuardedForm):
    """The button on an expired confirmation link's page: nothing but the guards."""


class LinkRequestForm(GuardedForm):
    """ "Email me my link": an address (plus the honeypot and stamp of every public form)."""

    email = AddressField()
