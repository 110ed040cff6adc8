from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from alerts import apis as alert_apis
from alerts import views as alert_views
from portal import apis as portal_apis
from portal import views as portal_views
from portal.ids import IdConverter
from scans import apis as scan_apis

register_converter(IdConverter, "id")

api_v1 = [
    path("auth/token/", portal_apis.TokenApi.as_view(), name="token"),
    path("auth/logout/", portal_apis.TokenLogoutApi.as_view(), name="token-logout"),
    path("auth/logout-all/", portal_apis.TokenLogoutAllApi.as_view(), name="token-logout-all"),
    path("patients/", portal_apis.PatientListApi.as_view(), name="patient-list"),
    path("patients/<id:pk>/", portal_apis.PatientDetailApi.as_view(), name="patient-detail"),
    path("patients/<id:pk>/timeline/", scan_apis.PatientTimelineApi.as_view(), name="patient-timeline"),
    path("patients/<id:pk>/fhir/", scan_apis.PatientFhirApi.as_view(), name="patient-fhir"),
    path("physicians/", portal_apis.PhysicianListApi.as_view(), name="physician-list"),
    path("scans/", scan_apis.ScanListApi.as_view(), name="scan-list"),
    path("scans/<id:pk>/", scan_apis.ScanDetailApi.as_view(), name="scan-detail"),
    # Before scan-file, whose <str:kind> would take "fhir" and "onset" too.
    path("scans/<id:pk>/fhir/", scan_apis.ScanFhirApi.as_view(), name="scan-fhir"),
    path("scans/<id:pk>/onset/", scan_apis.ScanOnsetApi.as_view(), name="scan-onset"),
    path("scans/<id:pk>/<str:kind>/", scan_apis.ScanFileApi.as_view(), name="scan-file"),
    path("alerts/", alert_apis.AlertListApi.as_view(), name="alert-list"),
    path("alerts/<id:pk>/acknowledge/", alert_apis.AlertAcknowledgeApi.as_view(), name="alert-acknowledge"),
    path("alerts/<id:pk>/resolve/", alert_apis.AlertResolveApi.as_view(), name="alert-resolve"),
    path("alerts/<id:pk>/undo-resolve/", alert_apis.AlertUndoResolveApi.as_view(), name="alert-undo-resolve"),
    path("push/subscription/", alert_apis.PushSubscriptionApi.as_view(), name="push-subscription"),
]

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("information/", portal_views.information, name="information"),
    path("healthz", portal_views.healthz, name="healthz"),
    path("session/", portal_views.session_state, name="session-state"),
    # The service worker that shows Web Push notifications: served from the root, so its scope is the site.
    path("sw.js", alert_views.service_worker, name="service-worker"),
    # Locked out after too many failures by django-axes (portal/auth.py), as the API and the admin are.
    path("login/", portal_views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("scans/", include("scans.urls")),
    path("alerts/", include("alerts.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file, so the strict CSP (no inline script) holds.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
