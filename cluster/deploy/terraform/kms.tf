# One customer-managed key per region, rotated yearly: EKS secrets, Aurora storage, S3
# backups, Secrets Manager and the flow logs are encrypted with the key of their region.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:a key policy: "*" is the key itself, and the account root administering it is AWS's default key policy
  #checkov:skip=CKV_AWS_356:a key policy: "*" is the key itself
  #checkov:skip=CKV_AWS_109:a key policy: "*" is the key itself, and the account root administering it is AWS's default key policy
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid = "CloudWatchLogsEncrypt"
    actions = [
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${local.name}: data at rest in ${var.region}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}

resource "aws_kms_key" "replica" {
  provider                = aws.replica
  description             = "${local.name}: data at rest in ${var.replica_region}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "replica" {
  provider      = aws.replica
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.replica.key_id
}
