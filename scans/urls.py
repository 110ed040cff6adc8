from django.urls import path

from scans import views

app_name = "scans"
urlpatterns = [
    path("", views.history, name="history"),
    path("new/", views.new_scan, name="new"),
    path("<id:pk>/", views.detail, name="detail"),
    path("<id:pk>/onset/", views.onset, name="onset"),
    path("patients/<id:pk>/", views.patient, name="patient"),
]
