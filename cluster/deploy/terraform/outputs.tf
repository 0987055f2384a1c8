output "eks_cluster_name" {
  description = "aws eks update-kubeconfig --name <this>, then apply cluster/deploy/kubernetes"
  value       = aws_eks_cluster.vigil.name
}

output "database_writer_endpoint" {
  description = "Host of VIGIL_DATABASE_URL (the secret <name>/database-url)"
  value       = aws_rds_cluster.primary.endpoint
}

output "database_replica_endpoint" {
  description = "Reader endpoint of the replica region's cluster"
  value       = aws_rds_cluster.replica.reader_endpoint
}

output "backup_bucket" {
  description = "Backups bucket of the primary region"
  value       = module.backups.id
}

output "secret_arns" {
  description = "Secrets Manager secrets to fill, by name"
  value       = { for k, s in aws_secretsmanager_secret.vigil : k => s.arn }
}
