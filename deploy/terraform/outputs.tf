output "worker_ips" {
  description = "Elastic IPs of the workers."
  value       = aws_eip.worker[*].public_ip
}

output "api_urls" {
  description = "Base URLs (BW_PUBLIC_URL) once DNS or the self-signed certificate is sorted out."
  value       = [for eip in aws_eip.worker : "https://${eip.public_ip}"]
}

output "ssh_commands" {
  description = "SSH to each worker (Debian's AMI user is admin)."
  value       = [for eip in aws_eip.worker : "ssh -i ~/.ssh/${var.key_name}.pem admin@${eip.public_ip}"]
}

locals {
  # The fleet's Redis URL without its password (which only the vault holds).
  redis_scheme               = var.redis_tls ? "rediss" : "redis"
  redis_user                 = var.redis_username == "" ? "" : "${var.redis_username}@"
  redis_url_without_password = var.redis_host == "" ? "" : "${local.redis_scheme}://${local.redis_user}${var.redis_host}:${var.redis_port}/${var.redis_db}"
}

output "redis_url_without_password" {
  description = "Fleet mode: bw_redis_url for the vault (secrets.yml) once its password is added (user:password@ or :password@ before the host)."
  value       = local.redis_url_without_password
}

output "worker_security_group_id" {
  description = "The workers' security group, for the fleet's Redis to let in."
  value       = aws_security_group.worker.id
}

output "ansible_inventory" {
  description = "An inventory for ../ansible/playbook.yml (make inventory writes it). Worker ids are the instances' Name tags."
  value = join("\n", concat(
    ["[workers]"],
    [for i, eip in aws_eip.worker : "worker-${i + 1} ansible_host=${eip.public_ip} ansible_user=admin bw_worker_id=${var.project_name}-${i + 1}"],
    var.redis_host == "" ? [] : concat(
      ["", "[workers:vars]", "# Fleet: bw_redis_url in secrets.yml (vault): ${local.redis_url_without_password} with the password added"],
      var.fleet_prefix == "" ? [] : ["bw_fleet_prefix=${var.fleet_prefix}"]
    ),
    [""]
  ))
}
