# One backup bucket: KMS encrypted, versioned, never public, moved to Glacier after
# archive_after_days and deleted after expire_after_days, its events on EventBridge. The
# primary region's bucket and its replica in the second region are both this module, so
# the two cannot drift apart; access logging is set where a log bucket in the same region
# exists (S3 server access logs cannot cross regions).
variable "bucket" {
  description = "The bucket's name"
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the objects (bucket keys on)"
  type        = string
}

variable "archive_after_days" {
  description = "Days until an object moves to Glacier"
  type        = number
}

variable "expire_after_days" {
  description = "Days until an object is deleted"
  type        = number
}

variable "access_log_bucket" {
  description = "Bucket (same region) receiving this bucket's server access logs; null: none"
  type        = string
  default     = null
}

variable "access_log_prefix" {
  description = "Key prefix of this bucket's access logs"
  type        = string
  default     = "backups/"
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:access logging is its own resource below, set wherever a log bucket in the same region exists; the replica holds only replicated objects and reading it is a break-glass step audited by CloudTrail
  #checkov:skip=CKV_AWS_144:cross-region replication is configured by the caller (backups.tf) from the primary bucket to the replica, which is this same module in the second region
  bucket = var.bucket
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    id     = "archive-then-expire"
    status = "Enabled"
    filter {}
    transition {
      days          = var.archive_after_days
      storage_class = "GLACIER"
    }
    expiration {
      days = var.expire_after_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  count         = var.access_log_bucket == null ? 0 : 1
  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_log_bucket
  target_prefix = var.access_log_prefix
}

resource "aws_s3_bucket_notification" "this" {
  bucket      = aws_s3_bucket.this.id
  eventbridge = true
}

output "id" {
  description = "The bucket's name"
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "The bucket's ARN"
  value       = aws_s3_bucket.this.arn
}
