export { WhatsAppStatusProvider, useWhatsAppStatus } from "./context";
export type { WhatsAppStatusContextValue, WhatsAppStatusProviderProps } from "./context";
export { WhatsAppStatusDot } from "./WhatsAppStatusDot";
export type { WhatsAppStatusDotProps } from "./WhatsAppStatusDot";
export { WhatsAppStatusBadge } from "./WhatsAppStatusBadge";
export type { WhatsAppStatusBadgeProps } from "./WhatsAppStatusBadge";
export { WhatsAppStatusPopover } from "./WhatsAppStatusPopover";
export type { WhatsAppStatusPopoverProps } from "./WhatsAppStatusPopover";
export { dotTooltip, ErrorText } from "./parts";
