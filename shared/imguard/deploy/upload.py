"""How a function's code reaches SCF: inline in the API request, or from a COS object.

A full build (~15 MB zipped) is too big for one API request (see ``package.INLINE_LIMIT``), so it
is put in a COS bucket first and CreateFunction/UpdateFunctionCode name the object. A code-only
build (``make layer``) goes inline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from imguard.deploy.errors import DeployError
from imguard.deploy.inputs import APP, Credentials
from imguard.deploy.package import CodePackage

KEY_PREFIX = f"{APP}-deploy"


@dataclass(frozen=True)
class CodeSource:
    zip_base64: Optional[str] = field(default=None, repr=False)
    bucket: Optional[str] = None  # BucketName-APPID
    key: Optional[str] = None  # object key, no leading slash
    region: Optional[str] = None

    def create_fields(self) -> Dict[str, Any]:
        """CreateFunction's Code (and CodeSource): ZipFile, or the COS object."""
        if self.zip_base64 is not None:
            return {"Code": {"ZipFile": self.zip_base64}, "CodeSource": "ZipFile"}
        return {"Code": self._cos_fields(), "CodeSource": "Cos"}

    def update_fields(self) -> Dict[str, Any]:
        """UpdateFunctionCode takes the same fields at the top level."""
        if self.zip_base64 is not None:
            return {"ZipFile": self.zip_base64, "CodeSource": "ZipFile"}
        return dict(self._cos_fields(), CodeSource="Cos")

    def describe(self) -> str:
        return "inline" if self.zip_base64 is not None else f"from cos://{self.bucket}/{self.key}"

    def _cos_fields(self) -> Dict[str, Any]:
        # CosBucketName is the bucket's own part, without "-APPID"; CosObjectName starts with "/"
        # (Code, models of tencentcloud-sdk-python-scf).
        return {"CosBucketName": self.bucket.rsplit("-", 1)[0],  # type: ignore[union-attr]
                "CosObjectName": "/" + self.key,  # type: ignore[operator]
                "CosBucketRegion": self.region}


def inline(pkg: CodePackage) -> CodeSource:
    return CodeSource(zip_base64=pkg.base64())


def planned(pkg: CodePackage, bucket: Optional[str], region: Optional[str]) -> CodeSource:
    """Where the code will come from; nothing is uploaded yet (all --dry-run needs)."""
    if pkg.fits_inline:
        return inline(pkg)
    if not bucket or not region:
        raise DeployError(
            f"{pkg.folder} is {pkg.size / 1e6:.1f} MB zipped, too big to send inline (about 7 MB at most): "
            f"name a COS bucket for the code with --code-bucket BucketName-APPID (COS_BUCKET and COS_REGION "
            f"are used when set), or build code-only with `make layer`")
    return CodeSource(bucket=bucket, key=object_key(pkg), region=region)


def object_key(pkg: CodePackage) -> str:
    # Named by content: a repeated deployment of the same build writes the same object.
    return f"{KEY_PREFIX}/{pkg.app}-{pkg.sha256[:16]}.zip"


def upload(pkg: CodePackage, target: CodeSource, creds: Credentials, endpoint: Optional[str] = None) -> None:
    """Put the zip where ``target`` says, with the deploy credentials. ``endpoint``
    (``scheme://host:port``) replaces the bucket's COS domain, for tests."""
    from qcloud_cos import CosConfig, CosS3Client
    from qcloud_cos.cos_exception import CosClientError, CosServiceError

    options: Dict[str, Any] = dict(SecretId=creds.secret_id, SecretKey=creds.secret_key, Token=creds.token,
                                   Region=target.region)
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(Domain=parts.netloc, Scheme=parts.scheme or "https")
    client = CosS3Client(CosConfig(**options), retry=1)
    try:
        client.put_object(Bucket=target.bucket, Key=target.key, Body=pkg.data, ContentType="application/zip")
    except CosServiceError as exc:
        raise DeployError(f"uploading the code to cos://{target.bucket}/{target.key}: {exc.get_error_code()} "
                          f"{exc.get_error_msg()} (the deploying key needs cos:PutObject on that bucket)",
                          exit_code=1) from None
    except CosClientError as exc:
        raise DeployError(f"uploading the code to cos://{target.bucket}/{target.key}: {exc}", exit_code=1) from None
