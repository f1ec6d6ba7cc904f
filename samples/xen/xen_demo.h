/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the C demo frontend and backend (xen_demo_front.c,
 * xen_demo_back.c): strict number parsing, short debugfs commands, and the
 * "trace" debugfs file.  See Documentation/rust/xen-demo.rst.
 */
#ifndef _SAMPLES_XEN_DEMO_H
#define _SAMPLES_XEN_DEMO_H

#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include <xen/interface/io/demo.h>

#define XEN_DEMO_SLOT_MASK	((u32)XEN_DEMO_RING_SIZE - 1)
/* The longest debugfs command. */
#define XEN_DEMO_INPUT_MAX	64

/**
 * xen_demo_parse_u32() - parse a decimal number made of digits only
 * @s: the text
 * @val: set to the number
 *
 * Unlike sscanf(), xenbus_scanf() and kstrtou32(), "12abc", " 12", "+12",
 * "012", "0x12", "12\n" and "" are errors: the same rule as the Rust
 * backend's kernel::xen::xenstore::FromValue.
 *
 * Return: 0, -EINVAL for anything but digits (or a leading zero), -ERANGE if
 * it does not fit.
 */
static inline int xen_demo_parse_u32(const char *s, u32 *val)
{
	const char *p;

	if (!*s || (s[0] == '0' && s[1]))
		return -EINVAL;
	for (p = s; *p; p++)
		if (!isdigit(*p))
			return -EINVAL;
	return kstrtou32(s, 10, val);
}

/**
 * xen_demo_copy_input() - copy a short command from user space
 * @dst: buffer for the command
 * @size: size of @dst
 * @src: the user buffer
 * @count: number of bytes in @src
 *
 * Copies the command and drops one trailing newline.
 *
 * Return: 0 on success, -EINVAL if the command is empty, does not fit or
 * contains a NUL byte, -EFAULT if it cannot be read.
 */
static inline int xen_demo_copy_input(char *dst, size_t size,
				      const char __user *src, size_t count)
{
	if (!count || count >= size)
		return -EINVAL;
	if (copy_from_user(dst, src, count))
		return -EFAULT;
	dst[count] = '\0';
	if (strlen(dst) != count)
		return -EINVAL;
	if (dst[count - 1] == '\n')
		dst[count - 1] = '\0';
	return 0;
}

/* The "trace" file: its private data is the device's bool trace flag. */
static inline ssize_t xen_demo_trace_read(struct file *file,
					  char __user *ubuf, size_t count,
					  loff_t *ppos)
{
	bool *trace = file->private_data;
	char buf[3];
	int len;

	len = scnprintf(buf, sizeof(buf), "%u\n", READ_ONCE(*trace));
	return simple_read_from_buffer(ubuf, count, ppos, buf, len);
}

static inline ssize_t xen_demo_trace_write(struct file *file,
					   const char __user *ubuf,
					   size_t count, loff_t *ppos)
{
	bool *trace = file->private_data;
	char buf[XEN_DEMO_INPUT_MAX];
	int err;

	err = xen_demo_copy_input(buf, sizeof(buf), ubuf, count);
	if (err)
		return err;
	if (!strcmp(buf, "0"))
		WRITE_ONCE(*trace, false);
	else if (!strcmp(buf, "1"))
		WRITE_ONCE(*trace, true);
	else
		return -EINVAL;
	return count;
}

static const struct file_operations xen_demo_trace_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = xen_demo_trace_read,
	.write = xen_demo_trace_write,
};

#endif /* _SAMPLES_XEN_DEMO_H */
