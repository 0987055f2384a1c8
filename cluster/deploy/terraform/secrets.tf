# The secrets the Kubernetes Secrets of cluster/deploy/kubernetes are filled from (by the
# External Secrets operator, or by hand: docs/operations.md): the database URL of Vigil's
# application role, the Redis password of Ray's GCS fault tolerance and the Ray cluster token.
# Values are set outside Terraform (never in state); each secret is replicated to the
# replica region so a promoted region can start.
locals {
  secrets = {
    database-url = "postgresql://vigil:<password>@<writer endpoint>:5432/vigil?sslmode=require"
    redis        = "The Redis password of Ray's GCS fault tolerance"
    ray-token    = "The Ray cluster token (RAY_AUTH_MODE=token)"
  }
}

resource "aws_secretsmanager_secret" "vigil" {
  #checkov:skip=CKV2_AWS_57:rotated by the runbook in docs/operations.md ("Upgrade"): the Ray token and Redis password need a rolling restart of the cluster, which a rotation Lambda cannot do
  for_each                = local.secrets
  name                    = "${local.name}/${each.key}"
  description             = each.value
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
  replica {
    region     = var.replica_region
    kms_key_id = aws_kms_key.replica.arn
  }
}
