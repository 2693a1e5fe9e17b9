/** @type {import('next').NextConfig} */
const nextConfig = {
  // The example runs beside wagate on a private network; nothing here needs images or i18n.
  poweredByHeader: false,
};
export default nextConfig;
