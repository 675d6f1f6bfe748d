"""HubSpot's webhook endpoint (connections/<id>/hubspot/webhook)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors.hubspot import webhooks


class HubSpotWebhook(APIView):
    """HubSpot's webhook for a connection: contact and company deletions take effect at once.

    Authenticated by HubSpot's v3 signature with the connection's client_secret, not a key.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return "X-HubSpot-Signature-v3"  # answers 401, not 403, to an unsigned request

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, pk: int) -> Response:
        try:
            webhooks.webhook_receive(
                connection_id=pk,
                method=request.method or "POST",
                uri=request.build_absolute_uri(),
                body=request.body,
                headers=request.headers,
            )
        except webhooks.WebhookRefused:
            raise exceptions.AuthenticationFailed(
                "Unknown connection or bad X-HubSpot-Signature-v3 (signed with the connection's "
                "client_secret, timestamp within 5 minutes)."
            ) from None
        except ValueError as error:
            raise serializers.ValidationError({"body": str(error)}) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
