variable "aws_region" {
  description = "AWS region of the workers."
  type        = string
  default     = "us-east-1"
}

variable "project_name" {
  description = "Prefix of every resource name and the Project tag."
  type        = string
  default     = "browser-worker"
}

variable "instance_type" {
  description = "2 vCPU / 4 GiB runs 3 sessions (BW_MAX_SESSIONS=3); give more memory for more."
  type        = string
  default     = "t3.medium"
}

variable "instance_count" {
  description = "How many workers."
  type        = number
  default     = 1
}

variable "ami_id" {
  description = "AMI to boot; empty: the latest official Debian 12 (bookworm) amd64 image, whose chromium package the worker uses."
  type        = string
  default     = ""
}

variable "key_name" {
  description = "Name of an existing EC2 key pair for SSH."
  type        = string
}

variable "api_cidrs" {
  description = "Who may reach HTTPS (443): the orchestrator's egress addresses, and the people who open VNC viewers."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "Who may SSH (22). Empty: no SSH rule at all (use SSM Session Manager instead)."
  type        = list(string)
  default     = []
}

variable "root_volume_gb" {
  description = "Root disk: OS, Chromium, persistent profiles and 24 h of artifacts."
  type        = number
  default     = 30
}

variable "artifacts_bucket" {
  description = "Optional S3 bucket for BW_ARTIFACTS_URL=s3://<bucket>/<prefix>; the instance role may put objects into it. Empty: no role."
  type        = string
  default     = ""
}

# Fleet mode (README "Running a fleet"): the workers share a Redis that the orchestrator runs;
# Terraform does not create it. Its password never passes through Terraform (nor its state): the
# whole URL goes in Ansible's secrets.yml (vault) as bw_redis_url; `terraform output
# redis_url_without_password` shows the rest of it.
variable "redis_host" {
  description = "Host name or address of the fleet's Redis. Empty: each worker stands alone."
  type        = string
  default     = ""
}

variable "redis_port" {
  description = "Port of the fleet's Redis."
  type        = number
  default     = 6379
}

variable "redis_tls" {
  description = "TLS to Redis (rediss://). Turn off only for a Redis on a private network you trust: the password crosses it."
  type        = bool
  default     = true
}

variable "redis_db" {
  description = "Redis database number."
  type        = number
  default     = 0
}

variable "redis_username" {
  description = "Redis ACL user (Redis 6+); empty: the default user (requirepass). Its password goes in the vault only."
  type        = string
  default     = ""
}

variable "redis_security_group_id" {
  description = "Optional: security group of the Redis (in this VPC); the workers are let in on redis_port. Empty: open it yourself."
  type        = string
  default     = ""
}

variable "fleet_prefix" {
  description = "BW_FLEET_PREFIX, one per fleet sharing a Redis; empty: the worker's default (bw)."
  type        = string
  default     = ""
}
