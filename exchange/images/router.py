"""A record's image: the publisher uploads it; subscribers get it in their view.

`preview` is no route: it is how the console shows a publisher its image as
another reader would get it (see `service.Preview`), answered like `read`.
"""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from exchange.catalog.access import ProductAccess, PublishAccess, ReadAccess, refusals_logged
from exchange.db import SessionDep
from exchange.images import service
from exchange.privacy.views import label
from exchange.records.body import read_limited
from policies.decision import VIEWS_MOST_PROTECTIVE_FIRST

router = APIRouter(prefix="/v1/products/{product}/records/{record_id}/image", tags=["images"])


async def _image_body(request: Request) -> bytes:
    return await read_limited(request, request.app.state.settings.max_image_bytes)


class ImageStored(BaseModel):
    id: str
    stored: bool
    media_type: str
    width: int
    height: int
    bytes: int
    boxes: int
    original_sha256: str


@router.put("", response_model=ImageStored)
def upload(
    request: Request,
    session: SessionDep,
    access: PublishAccess,
    record_id: str,
    data: Annotated[bytes, Depends(_image_body)],
) -> ImageStored:
    """Upload the record's image (JPEG, PNG or WebP bytes as the body). Its plates
    and faces are the boxes in the record's image field; they must lie inside the
    image. Stored encrypted. The same bytes again are a no-op (`stored: false`);
    other bytes for a record that has an image are a conflict."""
    with refusals_logged(session, request, access, action="image.upload"):
        (stored,) = service.upload(
            session, request, access, request.app.state.keyring, {record_id: data}
        )
    return ImageStored(
        id=stored.record_id,
        stored=stored.created,
        media_type=stored.media_type,
        width=stored.width,
        height=stored.height,
        bytes=stored.size,
        boxes=stored.boxes,
        original_sha256=stored.original_sha256,
    )


@router.get(
    "",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def read(request: Request, session: SessionDep, access: ReadAccess, record_id: str) -> Response:
    """The record's image for a stated `purpose`, in the decided view: the original
    where the view is raw; where it is `redacted`, a copy with every plate and face
    filled solid (with a margin) and no metadata, whose receipt — boxes filled and
    the SHA-256 of the original and of this copy — is in the `Exchange-Redaction`
    header and in the read's audit entry. Denied where the view withholds images."""
    with refusals_logged(session, request, access):
        served = service.serve(session, request, access, record_id)
    return _image(access.decision.view, served)


def preview(
    request: Request,
    session: Session,
    access: ProductAccess,
    record_id: str,
    as_seen_by: service.Preview,
) -> Response:
    """The record's image for one who may read it, in the more protective of its
    own and `as_seen_by`'s treatments; audited (and refused, logged) as
    `image.preview` under the access's own decision."""
    with refusals_logged(session, request, access, action=service.PREVIEW):
        served = service.serve(session, request, access, record_id, preview=as_seen_by)
    shown = min(
        access.decision.view, as_seen_by.decision.view, key=VIEWS_MOST_PROTECTIVE_FIRST.index
    )
    return _image(shown, served)


def _image(view: str, served: service.Served) -> Response:
    headers = {
        "Exchange-View": view,
        "Exchange-Treatment": served.treatment,
        "Exchange-Label": label({"image": served.treatment}),
        "Cache-Control": "private, no-store",
    }
    if served.receipt is not None:
        headers["Exchange-Redaction"] = json.dumps(served.receipt.as_dict(), separators=(",", ":"))
    return Response(served.data, media_type=served.media_type, headers=headers)
