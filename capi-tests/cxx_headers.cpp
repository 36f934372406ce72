// The public headers compile as C++ (extern "C", no C-only syntax), and a
// C++ caller links and calls the library.
#include <xesvm.h>
#include <xesvm/xe_drm.h>

#include <cstdio>
#include <cstring>

int main()
{
	svm_sim *sim = nullptr;
	if (svm_sim_create("dgpu", &sim) != 0)
		return 1;
	svm_context_config cfg{};
	cfg.struct_size = sizeof(cfg);
	cfg.driver = SVM_DRIVER_SIM;
	cfg.sim = sim;
	svm_context *ctx = nullptr;
	svm_device dev{};
	svm_pagemap pm{};
	if (svm_context_create(&cfg, &ctx) != 0 || svm_device_open_index(ctx, 0, &dev) != 0 ||
	    svm_device_pagemap(ctx, dev, 0, &pm) != 0)
		return 1;
	svm_alloc_result res{};
	res.struct_size = sizeof(res);
	if (svm_alloc_vram(ctx, dev, 0x1000000000ull, 2u << 20, pm, 0, &res) != 0 || res.pagemap.id != pm.id)
		return 1;
	xesvm_drm_xe_vm_bind bind{};
	bind.bind.op = XESVM_DRM_XE_VM_BIND_OP_PREFETCH; // anonymous unions work in C++ as in C
	std::printf("C++: xesvm %s, %s\n", svm_version(), std::strlen(svm_strerror(-16)) ? "ok" : "?");
	svm_context_destroy(ctx);
	svm_sim_destroy(sim);
	return bind.bind.op == XESVM_DRM_XE_VM_BIND_OP_PREFETCH ? 0 : 1;
}
