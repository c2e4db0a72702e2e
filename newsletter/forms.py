from __future__ import annotations

from django import forms
from email_validator import EmailNotValidError, validate_email

from newsletter.models import Topic


class SignupForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        label="Email address",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.org"}),
    )
    topics = forms.ModelMultipleChoiceField(
        queryset=Topic.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Pick none to get the day's top trending papers.",
    )
    # Honeypot: people never see it, naive bots fill it in.
    website = forms.CharField(required=False, label="Leave this empty")

    def clean_email(self) -> str:
        try:
            result = validate_email(self.cleaned_data["email"], check_deliverability=False)
        except EmailNotValidError as exc:
            raise forms.ValidationError(str(exc)) from None
        return result.normalized.lower()
