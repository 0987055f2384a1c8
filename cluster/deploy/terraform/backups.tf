# S3 for backups (pg_dump / Aurora snapshot exports, and Vigil's batch report tables): KMS
# encrypted, versioned, never public, moved to Glacier after backup_archive_after_days and
# deleted after backup_expire_after_days; replicated to the same bucket layout in the
# replica region.
module "backups" {
  source             = "./modules/backup_bucket"
  bucket             = "${local.name}-backups-${data.aws_caller_identity.current.account_id}"
  kms_key_arn        = aws_kms_key.main.arn
  archive_after_days = var.backup_archive_after_days
  expire_after_days  = var.backup_expire_after_days
  access_log_bucket  = aws_s3_bucket.access_logs.id
}

# -- the replica region ------------------------------------------------------------------------

module "backups_replica" {
  source             = "./modules/backup_bucket"
  providers          = { aws = aws.replica }
  bucket             = "${local.name}-backups-replica-${data.aws_caller_identity.current.account_id}"
  kms_key_arn        = aws_kms_key.replica.arn
  archive_after_days = var.backup_archive_after_days
  expire_after_days  = var.backup_expire_after_days
}

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "replication" {
  statement {
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [module.backups.arn]
  }
  statement {
    actions = [
      "s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
    ]
    resources = ["${module.backups.arn}/*"]
  }
  statement {
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = ["${module.backups_replica.arn}/*"]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
  statement {
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.replica.arn]
  }
}

resource "aws_iam_role" "replication" {
  name               = "${local.name}-backup-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
}

resource "aws_iam_role_policy" "replication" {
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

resource "aws_s3_bucket_replication_configuration" "backups" {
  bucket = module.backups.id
  role   = aws_iam_role.replication.arn
  rule {
    id     = "to-replica-region"
    status = "Enabled"
    filter {}
    delete_marker_replication {
      status = "Enabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = module.backups_replica.arn
      storage_class = "STANDARD_IA"
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica.arn
      }
    }
  }
  depends_on = [module.backups, module.backups_replica] # versioning on both sides first
}

# -- access logs of the backup bucket ----------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log bucket; logging it would log the logs
  #checkov:skip=CKV_AWS_144:access logs need no second region; the backups they audit have one
  #checkov:skip=CKV2_AWS_62:no consumer of events on access logs
  bucket = "${local.name}-access-logs-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = 400
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# The buckets moved into modules/backup_bucket: existing state follows them.

moved {
  from = aws_s3_bucket.backups
  to   = module.backups.aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket.backups_replica
  to   = module.backups_replica.aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_public_access_block.backups
  to   = module.backups.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_public_access_block.backups_replica
  to   = module.backups_replica.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_versioning.backups
  to   = module.backups.aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_versioning.backups_replica
  to   = module.backups_replica.aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.backups
  to   = module.backups.aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.backups_replica
  to   = module.backups_replica.aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.backups
  to   = module.backups.aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.backups_replica
  to   = module.backups_replica.aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_notification.backups
  to   = module.backups.aws_s3_bucket_notification.this
}

moved {
  from = aws_s3_bucket_notification.backups_replica
  to   = module.backups_replica.aws_s3_bucket_notification.this
}

moved {
  from = aws_s3_bucket_logging.backups
  to   = module.backups.aws_s3_bucket_logging.this[0]
}
