# Latent-class regression with R flexmix for benchmarks/crosscheck_flexmix.py (not CI).
# Usage: Rscript _flexmix_fit.R data.csv out_prefix kmax nrep seed
# data.csv: patient_id, t_months, y (and y_ratio); fits y ~ t + t^2 | patient_id, Gaussian with
# a residual sd per component, k = 1..kmax, nrep random starts each (stepFlexmix), then writes
#   out_prefix_params.csv  k, component, prior, coef_0, coef_1, coef_2, sigma, loglik, bic
#   out_prefix_clusters.csv patient_id, k, cluster   (k = the BIC choice, and every k)
suppressPackageStartupMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
prefix <- args[2]
kmax <- as.integer(args[3])
nrep <- as.integer(args[4])
set.seed(as.integer(args[5]))
outcome <- if (length(args) >= 6) args[6] else "y"
d$yy <- d[[outcome]]
fits <- stepFlexmix(yy ~ t_months + I(t_months^2) | patient_id, data = d, k = 1:kmax,
                    nrep = nrep, model = FLXMRglm(family = "gaussian"), verbose = FALSE,
                    control = list(iter.max = 1000, tolerance = 1e-10))
rows <- list()
clus <- list()
best <- getModel(fits, "BIC")
for (name in names(fits@models)) {
  m <- fits@models[[name]]
  p <- parameters(m)
  kk <- m@k
  for (j in seq_len(kk)) {
    rows[[length(rows) + 1]] <- data.frame(
      k_asked = as.integer(name), k = kk, component = j, prior = m@prior[j],
      coef_0 = p[1, j], coef_1 = p[2, j], coef_2 = p[3, j], sigma = p[4, j],
      loglik = as.numeric(logLik(m)), bic = BIC(m), bic_choice = identical(m, best))
  }
  first <- !duplicated(d$patient_id)
  clus[[length(clus) + 1]] <- data.frame(patient_id = d$patient_id[first],
                                         k_asked = as.integer(name),
                                         cluster = clusters(m)[first])
}
write.csv(do.call(rbind, rows), paste0(prefix, "_params.csv"), row.names = FALSE)
write.csv(do.call(rbind, clus), paste0(prefix, "_clusters.csv"), row.names = FALSE)
