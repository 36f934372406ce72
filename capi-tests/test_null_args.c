/* Bad input from C gets a negative errno and a message, never a crash. */
#include <errno.h>
#include <stdint.h>
#include "check.h"

int main(void)
{
	svm_sim *sim = NULL;
	uint64_t u64;
	uint32_t u32;
	int fd;

	CHECK_STATUS(svm_sim_create(NULL, &sim), -EINVAL);
	CHECK(strstr(svm_last_error(), "preset is NULL") != NULL);
	CHECK_STATUS(svm_sim_create("dgpu", NULL), -EINVAL);
	CHECK_STATUS(svm_sim_create("no-such-preset", &sim), -EINVAL);
	CHECK(strstr(svm_last_error(), "unknown preset") != NULL);
	CHECK_STATUS(svm_sim_create_from_text("[[device]]\ntiles = 7\n", &sim), -EINVAL);
	CHECK(strstr(svm_last_error(), "line 2") != NULL);
	CHECK_STATUS(svm_sim_create_from_file("/nonexistent/topology.toml", &sim), -ENOENT);
	CHECK_OK(svm_sim_destroy(NULL));

	CHECK_STATUS(svm_sim_device_count(NULL, &u32), -EINVAL);
	CHECK_STATUS(svm_sim_ioctl(NULL, 3, 0, NULL), -EINVAL);
	CHECK_STATUS(svm_sim_checksum(NULL, 0, 4096, &u64), -EINVAL);

	CHECK_OK(svm_sim_create("dgpu", &sim));
	CHECK_STATUS(svm_sim_device_count(sim, NULL), -EINVAL);
	CHECK_STATUS(svm_sim_device_open(sim, 5, &fd), -ENODEV);
	CHECK_STATUS(svm_sim_device_open(sim, 0, NULL), -EINVAL);
	CHECK_OK(svm_sim_device_open(sim, 0, &fd));
	CHECK_STATUS(svm_sim_ioctl(sim, fd, 0x4018644Cul, NULL), -EFAULT); /* NULL arg */
	CHECK_STATUS(svm_sim_ioctl(sim, 12345, 0xC0206443ul, &u64), -EBADF);
	CHECK_STATUS(svm_sim_gpu_access(sim, fd, 1, 0, 0x100000, 4096, 9, 0), -EINVAL);
	CHECK(strstr(svm_last_error(), "access 9") != NULL);
	CHECK_STATUS(svm_sim_cpu_access(sim, 0x100000, 0, SVM_ACCESS_READ, 0), -EINVAL);
	CHECK_STATUS(svm_sim_cpu_access(sim, UINT64_MAX - 10, 4096, SVM_ACCESS_READ, 0), -EINVAL);
	CHECK_STATUS(svm_sim_checksum(sim, 0x100000, 4096, NULL), -EINVAL);
	CHECK_STATUS(svm_sim_mmap(sim, 0x100000, 4096, 0x80), -EINVAL);
	CHECK_STATUS(svm_sim_bytes_in(sim, 0x100000, 4096, 0, 9, &u64), -EINVAL);
	svm_sim_counters small = { .struct_size = 4 };
	CHECK_STATUS(svm_sim_get_counters(sim, &small), -EINVAL);
	svm_sim_injection inj = { .struct_size = sizeof(inj), .point = 99, .error = -EBUSY };
	CHECK_STATUS(svm_sim_inject(sim, &inj), -EINVAL);
	inj.point = SVM_SIM_INJECT_MIGRATE;
	inj.error = EBUSY;
	CHECK_STATUS(svm_sim_inject(sim, &inj), -EINVAL);
	CHECK_STATUS(svm_sim_inject(sim, NULL), -EINVAL);
	/* A status no errno names would reach callers unexplained (fuzz_calls). */
	inj.error = -1684301056;
	CHECK_STATUS(svm_sim_inject(sim, &inj), -EINVAL);
	inj.error = -EBUSY;
	inj.device = 99;
	CHECK_STATUS(svm_sim_inject(sim, &inj), -EINVAL);
	inj.device = -1;
	inj.probability = __builtin_nan("");
	CHECK_STATUS(svm_sim_inject(sim, &inj), -EINVAL);
	inj.probability = 0;
	CHECK_OK(svm_sim_inject(sim, &inj));
	CHECK_STATUS(svm_sim_remove_device(sim, 0, -EBUSY), -EINVAL);
	CHECK_OK(svm_sim_destroy(sim));
	return 0;
}
