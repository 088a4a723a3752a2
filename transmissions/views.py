"""``/api/v1/transmissions`` (SPEC B §1): parse, call one service or selector, render."""

from __future__ import annotations

from engage import errors
from engage.api.views import ApiView, no_content, query_int, request_object, results
from transmissions.selectors import transmission_detail, transmission_list
from transmissions.services import transmission_cancel, transmission_create

VIEW = ("transmissions/view", "transmissions/modify")
MODIFY = ("transmissions/modify",)


def parse_transmission_id(raw: str) -> int:
    """Ids are numeric strings; anything else cannot name a transmission (404 / 1600)."""
    if not raw.isdigit() or len(raw) > 19 or int(raw) >= 1 << 63:
        raise errors.NotFound(f"Resource not found:transmission id {raw}")
    return int(raw)


class TransmissionListView(ApiView):
    grants = {"GET": VIEW, "POST": MODIFY}

    def get(self, request):
        return results(
            transmission_list(
                campaign_id=request.query_params.get("campaign_id") or None,
                template_id=request.query_params.get("template_id") or None,
            )
        )

    def post(self, request):
        created = transmission_create(
            body=request_object(request), max_rcpt_errors=query_int(request, "num_rcpt_errors")
        )
        body = {
            "total_rejected_recipients": created.rejected,
            "total_accepted_recipients": created.accepted,
            "id": str(created.transmission_id),
        }
        if created.rejected:
            body = {"rcpt_to_errors": created.rcpt_errors, **body}
            return results(body, errors=[errors.TransmissionValidation().as_dict()])
        return results(body)


class TransmissionDetailView(ApiView):
    grants = {"GET": VIEW, "DELETE": MODIFY}

    def get(self, request, transmission_id: str):
        return results({"transmission": transmission_detail(transmission_id=parse_transmission_id(transmission_id))})

    def delete(self, request, transmission_id: str):
        transmission_cancel(transmission_id=parse_transmission_id(transmission_id))
        return no_content()
