/* The model table (okvm/models.h): each product's parts have distinct, known IDs; every hub
 * port role is set and distinct; lookups by ID return the model (and the first revision when two
 * share IDs); the CH32V208 speed rule; the HID chips' speed lists; the features agree with the
 * chips that provide them. The IDs below are fixtures: docs/hardware.md 1.1. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "okvm/chip.h"
#include "okvm/models.h"
#include "okvm/serial.h"

static const enum okvm_model_part parts[] = { OKVM_PART_VIDEO, OKVM_PART_SERIAL, OKVM_PART_HUB };

static bool
has(const struct okvm_usb_part *p)
{
	return p->vid || p->pid;
}

static size_t
count_models(void)
{
	size_t n = 0;
	while (okvm_model_get((enum okvm_model_id)n))
		n++;
	return n;
}

static void
test_every_product_listed(void **state)
{
	static const struct {
		enum okvm_model_id id;
		const char *name;
		enum okvm_variant variant;
	} want[] = {
		{ OKVM_MODEL_MINI_KVM_V1_9, "Mini-KVM v1.9", OKVM_VARIANT_MINI_KVM },
		{ OKVM_MODEL_MINI_KVM_V1_6, "Mini-KVM v1.6", OKVM_VARIANT_MINI_KVM },
		{ OKVM_MODEL_KVM_GO_USB3, "KVM-Go USB3", OKVM_VARIANT_KVM_GO },
		{ OKVM_MODEL_KVM_GO_USB2, "KVM-Go USB2", OKVM_VARIANT_KVM_GO },
		{ OKVM_MODEL_KVM_VGA, "KVM-VGA", OKVM_VARIANT_KVM_VGA },
	};
	assert_int_equal(count_models(), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct okvm_model *m = okvm_model_get(want[i].id);
		assert_non_null(m);
		assert_string_equal(m->name, want[i].name);
		assert_int_equal(m->variant, want[i].variant);
	}
	assert_null(okvm_model_get((enum okvm_model_id)count_models()));
	assert_null(okvm_model_get((enum okvm_model_id) - 1));
}

/* Within a model no two parts share an ID; every model has a capture chip and a serial part. */
static void
test_ids_unique_per_model(void **state)
{
	const struct okvm_model *m;
	for (size_t i = 0; (m = okvm_model_get((enum okvm_model_id)i)); i++) {
		assert_true(has(&m->video));
		assert_true(has(&m->serial));
		for (size_t a = 0; a < 3; a++)
			for (size_t b = a + 1; b < 3; b++) {
				const struct okvm_usb_part *x = okvm_model_part(m, parts[a]);
				const struct okvm_usb_part *y = okvm_model_part(m, parts[b]);
				if (has(x) && has(y))
					assert_false(x->vid == y->vid && x->pid == y->pid);
			}
		for (size_t j = 0; j < i; j++) { /* names are unique too */
			const struct okvm_model *o = okvm_model_get((enum okvm_model_id)j);
			assert_string_not_equal(o->name, m->name);
		}
	}
}

/* Two models with the same capture ID are revisions of one variant (discovery cannot tell them
 * apart), with the same chips, so whichever the lookup returns, the unit is driven right. */
static void
test_shared_ids_are_revisions(void **state)
{
	const struct okvm_model *a, *b;
	for (size_t i = 0; (a = okvm_model_get((enum okvm_model_id)i)); i++)
		for (size_t j = i + 1; (b = okvm_model_get((enum okvm_model_id)j)); j++) {
			if (a->video.vid != b->video.vid || a->video.pid != b->video.pid)
				continue;
			assert_int_equal(a->variant, b->variant);
			assert_int_equal(a->video_chip, b->video_chip);
			assert_int_equal(a->hid_chip, b->hid_chip);
			assert_int_equal(a->serial.vid, b->serial.vid);
			assert_int_equal(a->serial.pid, b->serial.pid);
			assert_int_equal(a->fixed_baud, b->fixed_baud);
			const struct okvm_model *f = okvm_model_find(b->video.vid, b->video.pid,
								     OKVM_PART_VIDEO);
			assert_ptr_equal(f, a);
		}
}

/* A model on its own hub has the hub's ID and a port for video, serial and the switchable
 * USB-A port, all different and on a 4-port hub; a model without one has no port roles. */
static void
test_port_roles(void **state)
{
	const struct okvm_model *m;
	for (size_t i = 0; (m = okvm_model_get((enum okvm_model_id)i)); i++) {
		const struct okvm_model_ports *p = &m->ports;
		if (m->topology != OKVM_TOPO_HUB_PORTS) {
			assert_false(has(&m->hub));
			assert_int_equal(p->video | p->serial | p->switchable | p->ext, 0);
			continue;
		}
		assert_true(has(&m->hub));
		int roles[] = { p->video, p->serial, p->switchable, p->ext };
		for (size_t a = 0; a < 4; a++) {
			assert_in_range(roles[a], a < 3 ? 1 : 0, 4); /* ext may be absent (v1.6) */
			for (size_t b = a + 1; b < 4; b++)
				if (roles[b])
					assert_int_not_equal(roles[a], roles[b]);
		}
	}
	/* hardware.md 1.2 */
	const struct okvm_model *v19 = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9);
	assert_int_equal(v19->ports.video, 1);
	assert_int_equal(v19->ports.serial, 2);
	assert_int_equal(v19->ports.switchable, 3);
	assert_int_equal(v19->ports.ext, 4);
	assert_int_equal(okvm_model_get(OKVM_MODEL_MINI_KVM_V1_6)->ports.ext, 0);
}

static void
test_find_by_id(void **state)
{
	const struct okvm_model *v19 = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9);
	assert_ptr_equal(okvm_model_find(0x534D, 0x2109, OKVM_PART_VIDEO), v19);
	assert_ptr_equal(okvm_model_find(0x1A86, 0x7523, OKVM_PART_SERIAL), v19);
	assert_ptr_equal(okvm_model_find(0x1A40, 0x0101, OKVM_PART_HUB), v19);
	const struct okvm_model *go = okvm_model_find(0x345F, 0x2132, OKVM_PART_VIDEO);
	assert_non_null(go);
	assert_int_equal(go->variant, OKVM_VARIANT_KVM_GO);
	assert_int_equal(go->video_chip, OKVM_CHIP_MS2130S);
	assert_int_equal(go->hid_chip, OKVM_HID_CH32V208);
	assert_ptr_equal(okvm_model_find(0x345F, 0x2109, OKVM_PART_VIDEO),
			 okvm_model_get(OKVM_MODEL_KVM_VGA));
	assert_ptr_equal(okvm_model_find(0x1A86, 0xFE0C, OKVM_PART_SERIAL), go);
	/* a part's ID is not another part's; unknown IDs and "no part" 0:0 match nothing */
	assert_null(okvm_model_find(0x1A86, 0x7523, OKVM_PART_VIDEO));
	assert_null(okvm_model_find(0x534D, 0x2109, OKVM_PART_SERIAL));
	assert_null(okvm_model_find(0x534D, 0x2110, OKVM_PART_VIDEO));
	assert_null(okvm_model_find(0, 0, OKVM_PART_HUB));
	assert_false(okvm_model_part_is(go, OKVM_PART_HUB, 0, 0));
	assert_true(okvm_model_part_is(go, OKVM_PART_SERIAL, 0x1A86, 0xFE0C));
	assert_null(okvm_model_part(go, (enum okvm_model_part)7));
}

/* The video-chip code takes its kind from the table: every capture ID gives its model's chip. */
static void
test_chip_kind_agrees(void **state)
{
	const struct okvm_model *m;
	for (size_t i = 0; (m = okvm_model_get((enum okvm_model_id)i)); i++) {
		enum okvm_chip_kind k = (enum okvm_chip_kind) - 1;
		assert_int_equal(okvm_chip_kind_from_usb(m->video.vid, m->video.pid, &k), 0);
		assert_int_equal(k, m->video_chip);
	}
	enum okvm_chip_kind k;
	assert_int_equal(okvm_chip_kind_from_usb(0x1A40, 0x0101, &k), -ENODEV);
}

static struct okvm_unit_info
unit(enum okvm_variant v, uint16_t vid, uint16_t pid)
{
	struct okvm_unit_info u = { .variant = v, .video_vid = vid, .video_pid = pid };
	return u;
}

/* hardware.md 2.1: a CH32V208 is fixed at 115200; a CH9329's speed is settable: detect it. */
static void
test_fixed_baud(void **state)
{
	struct okvm_unit_info mini = unit(OKVM_VARIANT_MINI_KVM, 0x534D, 0x2109);
	struct okvm_unit_info go = unit(OKVM_VARIANT_KVM_GO, 0x345F, 0x2132);
	struct okvm_unit_info vga = unit(OKVM_VARIANT_KVM_VGA, 0x345F, 0x2109);
	struct okvm_unit_info go_noid = unit(OKVM_VARIANT_KVM_GO, 0, 0);
	assert_int_equal(okvm_model_fixed_baud(&mini), 0);
	assert_int_equal(okvm_model_fixed_baud(&go), 115200);
	assert_int_equal(okvm_model_fixed_baud(&vga), 115200);
	assert_int_equal(okvm_model_fixed_baud(&go_noid), 115200); /* by variant alone */
	assert_ptr_equal(okvm_model_of_unit(&mini), okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9));
	assert_ptr_equal(okvm_model_of_unit(&vga), okvm_model_get(OKVM_MODEL_KVM_VGA));
	struct okvm_unit_info bad = unit((enum okvm_variant)99, 0x534D, 0x2109);
	assert_null(okvm_model_of_unit(&bad));
	assert_int_equal(okvm_model_fixed_baud(&bad), 0);

	const struct okvm_model *m;
	for (size_t i = 0; (m = okvm_model_get((enum okvm_model_id)i)); i++) {
		if (m->hid_chip == OKVM_HID_CH32V208)
			assert_int_equal(m->fixed_baud, 115200);
		else
			assert_int_equal(m->fixed_baud, 0);
		if (m->fixed_baud)
			assert_true(okvm_hid_chip_baud_ok(m->hid_chip, m->fixed_baud));
	}
}

static void
test_hid_chips(void **state)
{
	const struct okvm_hid_chip *c = okvm_hid_chip_get(OKVM_HID_CH9329);
	assert_non_null(c);
	assert_string_equal(c->name, "CH9329");
	assert_int_equal(c->factory_baud, 9600);
	assert_int_equal(c->n_bauds, 8);
	assert_int_equal(c->bauds[0], 1200);
	assert_int_equal(c->bauds[c->n_bauds - 1], 115200);
	for (size_t i = 0; i < c->n_bauds; i++) {
		assert_true(okvm_serial_baud_valid(c->bauds[i])); /* the tty can be set to it */
		if (i)
			assert_true(c->bauds[i] > c->bauds[i - 1]);
	}
	assert_int_equal(c->target_vid, 0x1A86); /* hardware.md 2.8: default target-side ID */
	assert_int_equal(c->target_pid, 0xE129);
	assert_true(okvm_hid_chip_baud_ok(OKVM_HID_CH9329, 9600));
	assert_true(okvm_hid_chip_baud_ok(OKVM_HID_CH9329, 57600));
	assert_false(okvm_hid_chip_baud_ok(OKVM_HID_CH9329, 9601));
	assert_false(okvm_hid_chip_baud_ok(OKVM_HID_CH9329, 230400));
	assert_true(okvm_hid_chip_baud_ok(OKVM_HID_CH32V208, 115200));
	assert_false(okvm_hid_chip_baud_ok(OKVM_HID_CH32V208, 9600));
	assert_string_equal(okvm_hid_chip_get(OKVM_HID_CH32V208)->name, "CH32V208");
	assert_null(okvm_hid_chip_get((enum okvm_hid_kind)5));
	assert_false(okvm_hid_chip_baud_ok((enum okvm_hid_kind)5, 9600));
}

/* Features come from the chip that provides them (hardware.md 2.11, 3.3). */
static void
test_features_match_chips(void **state)
{
	const struct okvm_model *m;
	for (size_t i = 0; (m = okvm_model_get((enum okvm_model_id)i)); i++) {
		unsigned f = m->features;
		bool ch9329 = m->hid_chip == OKVM_HID_CH9329;
		/* the soft switch and the readable toggle are MS2109 registers 0xDF01 / 0xDF00 */
		if (f & (OKVM_MODEL_SOFT_SWITCH | OKVM_MODEL_TOGGLE_READ))
			assert_int_equal(m->video_chip, OKVM_CHIP_MS2109);
		if (f & OKVM_MODEL_TOGGLE_READ)
			assert_true(f & OKVM_MODEL_HW_TOGGLE);
		/* command 0x17 is the CH32V208's; the modem lines are the CH340's */
		assert_int_equal(!!(f & OKVM_MODEL_SERIAL_SWITCH), !ch9329);
		if (f & (OKVM_MODEL_DTR_POWER | OKVM_MODEL_RTS_RESET | OKVM_MODEL_DATAFLIP))
			assert_true(ch9329);
		/* a unit whose port can be switched has some way to switch it */
		if (m->ports.switchable)
			assert_true(f & (OKVM_MODEL_SOFT_SWITCH | OKVM_MODEL_HW_TOGGLE |
					 OKVM_MODEL_SERIAL_SWITCH));
	}
	unsigned v16 = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_6)->features;
	assert_false(v16 & (OKVM_MODEL_SOFT_SWITCH | OKVM_MODEL_DTR_POWER | OKVM_MODEL_DATAFLIP));
	assert_true(v16 & OKVM_MODEL_HW_TOGGLE);
	unsigned v19 = okvm_model_get(OKVM_MODEL_MINI_KVM_V1_9)->features;
	assert_true(v19 & OKVM_MODEL_SOFT_SWITCH);
	assert_true(v19 & OKVM_MODEL_DATAFLIP);
	assert_true(v19 & OKVM_MODEL_AUDIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_product_listed),
		cmocka_unit_test(test_ids_unique_per_model),
		cmocka_unit_test(test_shared_ids_are_revisions),
		cmocka_unit_test(test_port_roles),
		cmocka_unit_test(test_find_by_id),
		cmocka_unit_test(test_chip_kind_agrees),
		cmocka_unit_test(test_fixed_baud),
		cmocka_unit_test(test_hid_chips),
		cmocka_unit_test(test_features_match_chips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
