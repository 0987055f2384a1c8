# Aurora PostgreSQL, chosen over self-managed TimescaleDB on EC2: failover, backups, patching
# and the cross-region replica (a Global Database) are the provider's job, which matters more
# for a small operations team than TimescaleDB's compression. Vigil's migrations detect the
# missing extension and use the plain-PostgreSQL variant of the readings table
# (storage/migrate.py). The replica region holds a read-only secondary cluster that can be
# promoted if the primary region is lost.
resource "aws_rds_global_cluster" "vigil" {
  global_cluster_identifier = local.name
  engine                    = "aurora-postgresql"
  engine_version            = var.db_engine_version
  database_name             = "vigil"
  storage_encrypted         = true
  deletion_protection       = true
}

resource "aws_db_subnet_group" "primary" {
  name       = local.name
  subnet_ids = module.network.private_subnet_ids
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "PostgreSQL from the EKS nodes only"
  vpc_id      = module.network.vpc_id
  ingress {
    description     = "PostgreSQL from the Ray nodes"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_eks_cluster.vigil.vpc_config[0].cluster_security_group_id]
  }
}

resource "aws_db_cluster_parameter_group" "vigil" {
  name   = local.name
  family = "aurora-postgresql16"
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "aws_rds_cluster" "primary" {
  #checkov:skip=CKV2_AWS_8:Aurora's automated backups (point-in-time recovery for backup_retention_days) and the Global Database replica cover it; an AWS Backup plan would duplicate them
  #checkov:skip=CKV2_AWS_27:log_statement would write health data (glucose values) into the logs; slow statements are logged through log_min_duration_statement
  cluster_identifier                  = local.name
  global_cluster_identifier           = aws_rds_global_cluster.vigil.id
  engine                              = aws_rds_global_cluster.vigil.engine
  engine_version                      = aws_rds_global_cluster.vigil.engine_version
  database_name                       = "vigil"
  master_username                     = "vigil_admin"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.main.arn
  db_subnet_group_name                = aws_db_subnet_group.primary.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  db_cluster_parameter_group_name     = aws_db_cluster_parameter_group.vigil.name
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.main.arn
  backup_retention_period             = var.backup_retention_days
  preferred_backup_window             = "02:00-03:00"
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.name}-final"
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${local.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
    }]
  })
  managed_policy_arns = ["arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"]
}

resource "aws_rds_cluster_instance" "primary" {
  count                                 = var.db_instances
  identifier                            = "${local.name}-${count.index}"
  cluster_identifier                    = aws_rds_cluster.primary.id
  engine                                = aws_rds_cluster.primary.engine
  engine_version                        = aws_rds_cluster.primary.engine_version
  instance_class                        = var.db_instance_class
  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = 7
}

# -- the replica region ------------------------------------------------------------------------

resource "aws_db_subnet_group" "replica" {
  provider   = aws.replica
  name       = "${local.name}-replica"
  subnet_ids = module.replica_network.private_subnet_ids
}

resource "aws_security_group" "replica_database" {
  provider    = aws.replica
  name        = "${local.name}-replica-database"
  description = "PostgreSQL from inside the replica VPC only"
  vpc_id      = module.replica_network.vpc_id
  ingress {
    description = "PostgreSQL from the replica VPC (a promoted region's nodes)"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [var.replica_vpc_cidr]
  }
}

resource "aws_rds_cluster" "replica" {
  #checkov:skip=CKV2_AWS_8:Aurora's automated backups (point-in-time recovery for backup_retention_days) and the Global Database replica cover it; an AWS Backup plan would duplicate them
  #checkov:skip=CKV2_AWS_27:log_statement would write health data (glucose values) into the logs; slow statements are logged through log_min_duration_statement
  provider                            = aws.replica
  cluster_identifier                  = "${local.name}-replica"
  global_cluster_identifier           = aws_rds_global_cluster.vigil.id
  engine                              = aws_rds_global_cluster.vigil.engine
  engine_version                      = aws_rds_global_cluster.vigil.engine_version
  db_subnet_group_name                = aws_db_subnet_group.replica.name
  vpc_security_group_ids              = [aws_security_group.replica_database.id]
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.replica.arn
  backup_retention_period             = var.backup_retention_days
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.name}-replica-final"
  depends_on                          = [aws_rds_cluster_instance.primary]
}

resource "aws_rds_cluster_instance" "replica" {
  provider                              = aws.replica
  identifier                            = "${local.name}-replica-0"
  cluster_identifier                    = aws_rds_cluster.replica.id
  engine                                = aws_rds_cluster.replica.engine
  engine_version                        = aws_rds_cluster.replica.engine_version
  instance_class                        = var.db_instance_class
  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.replica.arn
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_retention_period = 7
}
