from __future__ import annotations

from django.urls import path, re_path

from newsletter import views

urlpatterns = [
    path("", views.signup, name="signup"),
    path("check-your-inbox/", views.check_inbox, name="check_inbox"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("confirm/<str:token>/resend/", views.confirm_resend, name="confirm_resend"),
    path("archive/", views.archive_index, name="archive"),
    re_path(r"^archive/(?P<day>\d{4}-\d{2}-\d{2})/$", views.archive_day, name="archive_day"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/undo/", views.unsubscribe_undo, name="unsubscribe_undo"),
    path("manage/<str:token>/", views.manage, name="manage"),
    path("feedback/<str:token>/<int:paper_id>/<str:vote>/", views.feedback, name="feedback"),
    path("digest/<uuid:public_id>/", views.digest_web, name="digest_web"),
    path("healthz/", views.healthz, name="healthz"),
    path("manage/<str:token>/pause/", views.manage_pause, name="manage_pause"),
    path("manage/<str:token>/resume/", views.manage_resume, name="manage_resume"),
    path("manage/<str:token>/resubscribe/", views.manage_resubscribe, name="manage_resubscribe"),
    path(
        "manage/<str:token>/resubscribe-link/",
        views.manage_resubscribe_link,
        name="manage_resubscribe_link",
    ),
    path("manage/<str:token>/sign-out/", views.manage_sign_out, name="manage_sign_out"),
    path("manage/<str:token>/export/", views.manage_export, name="manage_export"),
    path("manage/<str:token>/delete/", views.manage_delete, name="manage_delete"),
    path("resubscribe/<str:token>/", views.resubscribe, name="resubscribe"),
    path("link/", views.link_request, name="link_request"),
    path("link/sent/", views.link_sent, name="link_sent"),
]
