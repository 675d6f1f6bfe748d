from django.urls import path

from contacts.api import views

urlpatterns = [
    path("contacts", views.ContactList.as_view(), name="contact-list"),
    path("contacts/bulk", views.ContactBulk.as_view(), name="contact-bulk"),
    path("contacts/import", views.ContactImport.as_view(), name="contact-import"),
    path("contacts/<int:pk>", views.ContactDetail.as_view(), name="contact-detail"),
    path("lookup", views.LookupView.as_view(), name="lookup"),
]
