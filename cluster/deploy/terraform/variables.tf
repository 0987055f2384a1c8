variable "environment" {
  description = "dev, staging or prod; one tfvars file each in environments/"
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "region" {
  description = "The primary region: EKS, the writer database, the backups"
  type        = string
}

variable "replica_region" {
  description = "The second region: a database replica and replicated backups and secrets"
  type        = string
}

variable "vpc_cidr" {
  description = "The primary VPC's address range"
  type        = string
}

variable "replica_vpc_cidr" {
  description = "The replica region's VPC address range (must not overlap vpc_cidr)"
  type        = string
}

variable "availability_zones" {
  description = "Zones of the primary region: one private and one public subnet in each"
  type        = list(string)
}

variable "replica_availability_zones" {
  description = "Zones of the replica region"
  type        = list(string)
}

variable "kubernetes_version" {
  description = "EKS control plane version"
  type        = string
  default     = "1.32"
}

variable "eks_public_access_cidrs" {
  description = "Addresses allowed to reach the EKS API endpoint; empty keeps it private"
  type        = list(string)
  default     = []
  validation {
    condition     = !contains(var.eks_public_access_cidrs, "0.0.0.0/0")
    error_message = "eks_public_access_cidrs must not open the API endpoint to every address."
  }
}

variable "ray_head_instance_type" {
  description = "Node type of the Ray head group (GCS, Serve controller, autoscaler)"
  type        = string
}

variable "ray_worker_instance_types" {
  description = "Node types of the Ray worker group (device shards, API replicas)"
  type        = list(string)
}

variable "ray_worker_min" {
  description = "Fewest Ray worker nodes"
  type        = number
}

variable "ray_worker_max" {
  description = "Most Ray worker nodes (the KubeRay autoscaler's ceiling)"
  type        = number
}

variable "db_instance_class" {
  description = "Aurora PostgreSQL instance class"
  type        = string
}

variable "db_instances" {
  description = "Aurora instances in the primary region (one writer, the rest readers)"
  type        = number
}

variable "db_engine_version" {
  description = "Aurora PostgreSQL engine version (Global Database capable)"
  type        = string
  default     = "16.4"
}

variable "backup_retention_days" {
  description = "Days of Aurora automated backups (point-in-time recovery)"
  type        = number
}

variable "backup_archive_after_days" {
  description = "Days before exported backups in S3 move to Glacier"
  type        = number
  default     = 30
}

variable "backup_expire_after_days" {
  description = "Days before exported backups in S3 are deleted"
  type        = number
  default     = 2555
}
