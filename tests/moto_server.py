"""moto's S3 server, accepting MinIO's notification ARNs and answering an
empty notification configuration the way S3 and MinIO do.

moto checks that a bucket notification's queue ARN starts with an AWS
partition (arn:aws:sqs:...). MinIO's webhook targets are
arn:minio:sqs::<ID>:webhook, which is what `kumo trigger create
--configure-bucket` writes, as MinIO requires. This adds "minio" to the
partitions moto accepts, then runs moto's server unchanged. (moto also
requires the ARN's region to be the bucket's, so tests configure the
profile's webhook_arn_region, which a MinIO with MINIO_REGION expects too.)

Usage: python moto_server.py -H 127.0.0.1 -p PORT
"""
import sys

import moto.s3.responses as s3_responses
from moto.server import main

s3_responses.PARTITION_NAMES = (*s3_responses.PARTITION_NAMES, "minio")

# moto answers GetBucketNotificationConfiguration of a bucket without any
# configuration with a <GetBucketNotificationResponse/> root; S3 and MinIO
# answer <NotificationConfiguration/>, and aws-sdk-s3 requires that.
_get_bucket_notification = s3_responses.S3Response.get_bucket_notification


def _get_bucket_notification_like_s3(self):
    if not self.backend.get_bucket_notification_configuration(self.bucket_name):
        self.data["Action"] = "GetBucketNotificationConfiguration"
        return self.serialized(s3_responses.ActionResult({}))
    return _get_bucket_notification(self)


s3_responses.S3Response.get_bucket_notification = _get_bucket_notification_like_s3

if __name__ == "__main__":
    main(sys.argv[1:])
