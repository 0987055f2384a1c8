# Vigil on AWS: network, EKS for the Ray cluster (KubeRay), Aurora PostgreSQL with a replica
# in a second region, S3 backups, KMS and Secrets Manager. Plain HCL for Terraform >= 1.6;
# checked offline in `make test` (python-hcl2 parses it, checkov scans it). See
# docs/operations.md, "Deploy with KubeRay".
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = local.tags
  }
}

# The second region: the database replica, the replicated backups and secrets.
provider "aws" {
  alias  = "replica"
  region = var.replica_region
  default_tags {
    tags = local.tags
  }
}

locals {
  name = "vigil-${var.environment}"
  tags = {
    Project     = "vigil"
    Environment = var.environment
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
