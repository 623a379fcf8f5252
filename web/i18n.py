"""The panel's words in Bengali and English (chosen by `bot.language`), and how it writes
numbers, sizes, durations, money and times for people.

Keys are flat and dotted by kind: `status.pending`, `action.approve`, `issue.stuck_pending`,
`gateway.connected`, `bucket.lt5`. Both languages have the same keys (a test checks it).
Digits stay Western in both languages, as in the bot's own chat messages (`💎 10 ডায়মন্ড`).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Mapping

from domain import money

LANGUAGES = ("bn", "en")

EN: dict[str, str] = {
    "app": "Diamond Bot",
    "nav.label": "Panel",
    "nav.dashboard": "Dashboard",
    "nav.orders": "Orders",
    "nav.payments": "Payments",
    "nav.reports": "Reports",
    "nav.reconciliation": "Reconciliation",
    "nav.groups": "Groups",
    "nav.whatsapp": "WhatsApp",
    "skip": "Skip to content",
    "logout": "Log out",
    "signed_in_as": "Signed in as {user}",
    # login
    "login.title": "Log in",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.wrong": "Wrong username or password.",
    "login.throttled": "Too many failed attempts. Try again in {seconds} seconds.",
    # order statuses and actions
    "status.pending": "Pending",
    "status.processing": "Processing",
    "status.approved": "Approved",
    "status.completed": "Completed",
    "status.cancelled": "Cancelled",
    "status.deleted": "Deleted",
    "action.process": "Process",
    "action.approve": "Approve",
    "action.cancel": "Cancel",
    "action.delete": "Delete",
    "action.done.process": "Order {id} is now processing.",
    "action.done.approve": "Order {id} approved; the delivery message is on its way.",
    "action.done.cancel": "Order {id} cancelled; the reseller is told.",
    "action.done.delete": "Order {id} deleted.",
    "confirm.cancel": "Cancel order {id}? The reseller is told in the group.",
    "confirm.delete": "Delete order {id}? It is no longer billed or checked; it stays in the audit trail and under the Deleted filter.",
    "confirm.title": "Please confirm",
    "confirm.yes.cancel": "Yes, cancel the order",
    "confirm.yes.delete": "Yes, delete the order",
    "confirm.no": "No, go back",
    "issue.invalid": "Invalid record",
    "issue.stuck_pending": "Pending too long",
    "issue.processing_timeout": "Processing too long",
    "issue.delivery_failed": "Delivery failed",
    "recovered": "Recovered",
    "recovered.help": "Posted while the bot was offline; recovered at start",
    # dashboard
    "dash.title": "Dashboard",
    "dash.orders": "Orders by status",
    "dash.total": "Total",
    "dash.checks": "Reconciliation checks",
    "bucket.never": "Never checked",
    "bucket.lt5": "Fewer than 5",
    "bucket.lt10": "Fewer than 10",
    "bucket.gte10": "10 or more",
    "dash.issues_found": "Issues found",
    "dash.last_check": "Last check",
    "dash.system": "System",
    "dash.gateway": "Connection",
    "dash.uptime": "Uptime",
    "dash.performance": "Performance",
    "dash.cycle_time": "Check cycle time",
    "dash.orders_tracked": "Orders tracked",
    "dash.cycles_per_hour": "Cycles per hour",
    "dash.checks_today": "Checks today",
    "dash.memory": "Memory",
    "dash.memory.processes": "{size} · processes: {n}",
    "dash.cpu": "CPU",
    "dash.database": "Database size",
    "dash.groups": "Groups",
    "dash.groups.value": "{ready} of {total} running",
    "dash.updated": "Updated {time}",
    "dash.stale": "Not updated since {time}: the panel cannot reach the bot",
    "chart.orders": "Orders per hour (last 24 hours)",
    "chart.orders.summary": "{total} orders in the last 24 hours; busiest hour {hour} with {max}",
    "chart.orders.bar": "{hour}: {n} orders",
    "chart.revenue": "Revenue per day (last 14 days)",
    "chart.revenue.summary": "{total} in the last 14 days; best day {day} with {max}",
    "chart.revenue.bar": "{day}: {amount}",
    "unit.ms": "{n} ms",
    "unit.percent": "{n}%",
    "unit.day": "d",
    "unit.hour": "h",
    "unit.minute": "min",
    "unit.second": "s",
    "never": "never",
    "none": "—",
    # orders
    "orders.title": "Orders",
    "orders.filter": "Filter orders",
    "orders.status": "Status",
    "orders.status.all": "All",
    "orders.status.open": "Open (pending, processing, approved)",
    "orders.group": "Group",
    "orders.group.all": "All groups",
    "orders.since": "From",
    "orders.until": "To",
    "orders.q": "Search",
    "orders.q.help": "User, name, phone, order or message id",
    "orders.apply": "Show",
    "orders.reset": "Clear filters",
    "orders.count": "{total} orders",
    "orders.range": "{first}–{last} of {total}",
    "orders.empty": "No orders match these filters.",
    "orders.prev": "Previous",
    "orders.next": "Next",
    "orders.pages": "Pages",
    "orders.live": "Live",
    "orders.connecting": "Connecting…",
    "orders.reconnecting": "Reconnecting…",
    "orders.bad_filter": "Ignored a filter: {reason}",
    "col.id": "Order",
    "col.time": "Time",
    "col.group": "Group",
    "col.user": "Reseller",
    "col.diamonds": "Diamonds",
    "col.amount": "Amount",
    "col.status": "Status",
    "col.checks": "Checks",
    "col.issues": "Issues",
    "col.actions": "Actions",
    # order detail
    "order.title": "Order {id}",
    "order.back": "All orders",
    "order.summary": "Order",
    "order.text": "Message text",
    "order.group_id": "Group id",
    "order.user_id": "User id",
    "order.user_alt": "Other id",
    "order.user_name": "Name",
    "order.message_id": "Message id",
    "order.rate": "Rate (per diamond)",
    "order.times": "Times",
    "order.created_at": "Posted",
    "order.received_at": "Received by the bot",
    "order.processing_at": "Processing",
    "order.approved_at": "Approved",
    "order.completed_at": "Completed",
    "order.cancelled_at": "Cancelled",
    "order.deleted_at": "Deleted",
    "order.issues": "Issues",
    "order.no_issues": "No open issues.",
    "order.checks": "Check log",
    "order.check_count": "Checks",
    "order.last_checked_at": "Last check",
    "order.last_check_status": "Status at last check",
    "order.delivery": "Delivery message",
    "order.receipt": "Receipt message",
    "order.attempts": "Attempts",
    "order.last_attempt_at": "Last attempt",
    "order.last_error": "Last error",
    "order.sent_id": "Sent message id",
    "order.confirmed_at": "Confirmed sent",
    "order.audit": "Audit trail",
    "order.audit.at": "When",
    "order.audit.change": "Change",
    "order.audit.by": "By",
    "order.audit.note": "Note",
    "order.audit.created": "created",
    "order.recovered": "Recovered after downtime",
    "note.recovered": "recovered after downtime",
    "note.held_due": "held: the due limit was reached",
    "note.due_ok": "the due is within the limit again",
    "note.delivery_sent": "delivery message sent",
    "note.delivery_earlier": "delivery was confirmed earlier",
    "note.message_deleted": "the order message was deleted in WhatsApp",
    "note.edited": "edited in WhatsApp: .{before} → .{after}",
    "note.issue_raised": "issue raised: {issue}",
    "note.issue_cleared": "issue cleared: {issue}",
    "note.imported": "imported from the seed's database.json (id {id})",
    "note.import": "import: {details}",
    "yes": "Yes",
    "no": "No",
    # reconciliation
    "rec.title": "Reconciliation",
    "rec.intro": "Every group checks its open orders every few seconds. Open issues and each group's recent cycles.",
    "rec.issues": "Open issues",
    "rec.no_issues": "No open issues.",
    "rec.cycles": "Recent cycles per group",
    "rec.no_cycles": "No cycle has run yet.",
    "rec.more_groups": "Showing {shown} of {total} groups (groups with issues first).",
    "rec.started_at": "Started",
    "rec.checked": "Checked",
    "rec.open_issues": "Open issues",
    "rec.new_issues": "New",
    "rec.cleared_issues": "Cleared",
    "rec.actions": "Actions",
    "rec.duration": "Duration",
    "rec.recent": "Recent cycles",
    # groups
    "groups.title": "Groups",
    "groups.intro": "Each group's price per diamond and switches. Changes apply to new orders at once.",
    "groups.empty": "No group yet: the bot adds a group when it first sees a message in it.",
    "groups.name": "Group",
    "groups.enabled": "Taking orders",
    "groups.rate": "Rate (৳ per diamond)",
    "groups.rate.help": "A positive number with up to 4 decimal places, e.g. 2.30",
    "groups.auto_approve": "Auto-approve",
    "groups.auto_approve_max": "Auto-approve up to (diamonds)",
    "groups.due_limit": "Due limit (৳)",
    "groups.due_limit.help": "Empty: no limit. Orders that would take the due over it wait (e.g. 5000)",
    "groups.invalid": "Not saved: {reason}",
    "groups.orders": "Orders",
    "groups.open": "{n} open",
    "groups.save": "Save",
    "groups.saved": "Saved",
    "groups.saving": "Saving…",
    "groups.bad_max": "auto_approve_max: must be a whole number of diamonds, 0 or more",
    "groups.updated": "Group {name} saved.",
    # payments
    "method.bkash": "bKash",
    "method.nagad": "Nagad",
    "method.rocket": "Rocket",
    "method.bank": "Bank",
    "method.cash": "Cash",
    "method.other": "Other",
    "pay.title": "Payments",
    "pay.intro": "Record what a group paid (bKash, Nagad, cash …): its due drops at once. Approved orders are billed to the group.",
    "pay.record": "Record a payment",
    "pay.group": "Group",
    "pay.group.choose": "Choose the group",
    "pay.amount": "Amount (৳)",
    "pay.amount.help": "Taka, up to 2 decimal places, e.g. 500 or 23.50",
    "pay.method": "Method",
    "pay.reference": "Reference / TrxID",
    "pay.reference.help": "The transaction ID from the bKash or Nagad message",
    "pay.note": "Note",
    "pay.submit": "Record payment",
    "pay.saving": "Saving…",
    "pay.fill_due": "Fill in the whole due",
    "pay.due_now": "Due now: {amount}",
    "pay.recorded": "Payment {id} recorded: {amount} by {method} from {group}. Due now: {due}.",
    "pay.duplicate": "This form was already sent once: check the payments below before recording it again.",
    "pay.refused": "Not recorded: {reason}",
    "pay.duplicate_ref": "Reference {reference} is already recorded: payment {id}, {amount} by {method} on {when} ({by}). Record this payment as well?",
    "pay.record_anyway": "Record it anyway",
    "pay.dues": "Due per group",
    "pay.billed": "Billed",
    "pay.paid": "Paid",
    "pay.due": "Due",
    "pay.total_due": "Total due",
    "pay.advance": "{amount} advance",
    "pay.ledger": "Ledger",
    "pay.list": "Payments received",
    "pay.filter": "Filter payments",
    "pay.count": "{total} payments",
    "pay.range": "{first}–{last} of {total}",
    "pay.empty": "No payments match these filters.",
    "pay.col.id": "Payment",
    "pay.col.by": "Recorded by",
    "pay.void_col": "Mistake?",
    "pay.void": "Void",
    "pay.void_button": "Void",
    "pay.void_reason": "why it is wrong",
    "pay.void_reason_needed": "Say why the payment is wrong: it stays listed, marked void.",
    "pay.voided": "Payment {id} is void: it stays listed but no longer counts. Due now: {due}.",
    # ledger
    "ledger.title": "Ledger: {name}",
    "ledger.intro": "Approved orders add to the group's due, payments reduce it. The balance is what the group owes after each line; a negative one is an advance.",
    "ledger.all_time": "All time",
    "ledger.dates": "Dates",
    "ledger.opening": "Opening balance",
    "ledger.closing": "Closing balance",
    "ledger.in_range": "In these dates",
    "ledger.col.ref": "Ref",
    "ledger.col.description": "Description",
    "ledger.col.debit": "Billed",
    "ledger.col.credit": "Paid",
    "ledger.col.balance": "Balance (due)",
    "ledger.empty": "No billed orders or payments in these dates.",
    "ledger.truncated": "Lines {first}–{last} of {total}; the opening balance is the due before the first line shown.",
    "ledger.earlier": "Earlier lines",
    "ledger.later": "Later lines",
    "ledger.undated": "date unknown",
    "ledger.back": "All groups",
    "ledger.orders": "The group's orders",
    # reports
    "reports.title": "Daily report",
    "reports.intro": "One day per group: orders posted, diamonds and revenue approved, payments received, and what each group owes now.",
    "reports.day": "Day",
    "reports.prev": "Previous day",
    "reports.next": "Next day",
    "reports.today": "Today",
    "reports.orders": "Orders",
    "reports.revenue": "Revenue",
    "reports.payments": "Payments",
    "reports.due": "Due now",
    "reports.bad_day": "Ignored the day: {reason}",
    "export.title": "Download CSV",
    "export.intro": "Every order or payment in the dates, for Excel or Google Sheets; times in {tz}.",
    "export.orders": "Orders (CSV)",
    "export.payments": "Payments (CSV)",
    "groups.due": "Due",
    "groups.ledger": "Ledger",
    "groups.pay": "Record a payment",
    # whatsapp
    "wa.title": "WhatsApp",
    "wa.state": "Connection",
    "wa.kind": "Transport",
    "wa.kind.sandbox": "Sandbox (local test chat)",
    "wa.kind.whatsapp": "WhatsApp",
    "wa.detail": "Detail",
    "wa.queued": "Messages waiting to be sent",
    "wa.sent_last_hour": "Sent in the last hour",
    "wa.paused_until": "Sending paused until",
    "wa.sandbox.intro": "The bot talks to the sandbox, a local WhatsApp-like chat for demos and training. Post .10 there as a reseller to try an order.",
    "wa.sandbox.address": "Sandbox address",
    "wa.sandbox.open": "Open the sandbox chat",
    "wa.pair.title": "Pair the bot's WhatsApp number",
    "wa.pair.qr": "Scan this code: WhatsApp → Linked devices → Link a device.",
    "wa.pair.qr_alt": "QR code for linking WhatsApp",
    "wa.pair.code": "Or enter this pairing code on the phone",
    "wa.pair.expires": "Code valid until",
    "wa.pair.waiting": "Waiting for the next code…",
    "wa.repair": "Pair again",
    "wa.repair.confirm": "Log this WhatsApp session out and pair again? The bot stops answering until the new pairing is done.",
    "wa.repair.started": "Pairing started again.",
    "wa.unavailable": "The WhatsApp controls are not available in this version of the bot.",
    "wa.unreachable": "Cannot reach the WhatsApp status right now.",
    "gateway.stopped": "Stopped",
    "gateway.connecting": "Connecting",
    "gateway.connected": "Connected",
    "gateway.reconnecting": "Reconnecting",
    "gateway.pairing": "Waiting for pairing",
    "gateway.logged_out": "Logged out",
    "gateway.banned": "Temporarily banned",
    # errors
    "error.title": "Something went wrong",
    "error.unreachable": "The bot is not answering right now. The page will work again once it is back.",
    "error.not_found": "There is no order {id}.",
    "error.no_group": "There is no group {id}.",
    "error.refused": "Not done: {reason}",
    "error.back": "Back",
    "error.retry": "Try again",
    "error.network": "No connection to the panel. Check the network and try again.",
}

BN: dict[str, str] = {
    "app": "ডায়মন্ড বট",
    "nav.label": "প্যানেল",
    "nav.dashboard": "ড্যাশবোর্ড",
    "nav.orders": "অর্ডার",
    "nav.payments": "পেমেন্ট",
    "nav.reports": "রিপোর্ট",
    "nav.reconciliation": "মিলকরণ",
    "nav.groups": "গ্রুপ",
    "nav.whatsapp": "হোয়াটসঅ্যাপ",
    "skip": "মূল অংশে যান",
    "logout": "লগআউট",
    "signed_in_as": "{user} হিসেবে লগইন করা",
    "login.title": "লগইন",
    "login.username": "ব্যবহারকারীর নাম",
    "login.password": "পাসওয়ার্ড",
    "login.submit": "লগইন",
    "login.wrong": "ভুল ব্যবহারকারীর নাম বা পাসওয়ার্ড।",
    "login.throttled": "অনেকবার ভুল চেষ্টা হয়েছে। {seconds} সেকেন্ড পরে আবার চেষ্টা করুন।",
    "status.pending": "অপেক্ষমাণ",
    "status.processing": "প্রক্রিয়াধীন",
    "status.approved": "অনুমোদিত",
    "status.completed": "সম্পন্ন",
    "status.cancelled": "বাতিল",
    "status.deleted": "মুছে ফেলা",
    "action.process": "প্রক্রিয়া শুরু",
    "action.approve": "অনুমোদন",
    "action.cancel": "বাতিল",
    "action.delete": "মুছুন",
    "action.done.process": "অর্ডার {id} এখন প্রক্রিয়াধীন।",
    "action.done.approve": "অর্ডার {id} অনুমোদিত হয়েছে; ডেলিভারি বার্তা পাঠানো হচ্ছে।",
    "action.done.cancel": "অর্ডার {id} বাতিল হয়েছে; রিসেলারকে জানানো হয়েছে।",
    "action.done.delete": "অর্ডার {id} মুছে ফেলা হয়েছে।",
    "confirm.cancel": "অর্ডার {id} বাতিল করবেন? গ্রুপে রিসেলারকে জানানো হবে।",
    "confirm.delete": "অর্ডার {id} মুছে ফেলবেন? এটি আর বিলে বা যাচাইয়ে থাকবে না; হিসাবের ইতিহাসে আর \"মুছে ফেলা\" ফিল্টারে থাকবে।",
    "confirm.title": "নিশ্চিত করুন",
    "confirm.yes.cancel": "হ্যাঁ, অর্ডার বাতিল করুন",
    "confirm.yes.delete": "হ্যাঁ, অর্ডার মুছুন",
    "confirm.no": "না, ফিরে যান",
    "issue.invalid": "তথ্য অসম্পূর্ণ বা ভুল",
    "issue.stuck_pending": "অনেকক্ষণ অপেক্ষমাণ",
    "issue.processing_timeout": "প্রক্রিয়াকরণে দেরি",
    "issue.delivery_failed": "ডেলিভারি বার্তা যায়নি",
    "recovered": "অফলাইনে পাওয়া",
    "recovered.help": "বট বন্ধ থাকার সময় পাঠানো; চালু হওয়ার পর উদ্ধার করা হয়েছে",
    "dash.title": "ড্যাশবোর্ড",
    "dash.orders": "অবস্থা অনুযায়ী অর্ডার",
    "dash.total": "মোট",
    "dash.checks": "মিলকরণ যাচাই",
    "bucket.never": "কখনো যাচাই হয়নি",
    "bucket.lt5": "5 বারের কম",
    "bucket.lt10": "10 বারের কম",
    "bucket.gte10": "10 বা তার বেশি",
    "dash.issues_found": "পাওয়া সমস্যা",
    "dash.last_check": "শেষ যাচাই",
    "dash.system": "সিস্টেম",
    "dash.gateway": "সংযোগ",
    "dash.uptime": "চালু আছে",
    "dash.performance": "কার্যক্ষমতা",
    "dash.cycle_time": "যাচাই চক্রের সময়",
    "dash.orders_tracked": "নজরে থাকা অর্ডার",
    "dash.cycles_per_hour": "ঘণ্টায় চক্র",
    "dash.checks_today": "আজকের যাচাই",
    "dash.memory": "মেমরি",
    "dash.memory.processes": "{size} · প্রসেস: {n}",
    "dash.cpu": "সিপিইউ",
    "dash.database": "ডাটাবেসের আকার",
    "dash.groups": "গ্রুপ",
    "dash.groups.value": "{total}টির মধ্যে {ready}টি চালু",
    "dash.updated": "হালনাগাদ {time}",
    "dash.stale": "{time} এর পর হালনাগাদ হয়নি: প্যানেল বটের সাথে যোগাযোগ করতে পারছে না",
    "chart.orders": "ঘণ্টাভিত্তিক অর্ডার (শেষ 24 ঘণ্টা)",
    "chart.orders.summary": "শেষ 24 ঘণ্টায় {total}টি অর্ডার; সবচেয়ে বেশি {hour} টায়, {max}টি",
    "chart.orders.bar": "{hour}: {n}টি অর্ডার",
    "chart.revenue": "দৈনিক আয় (শেষ 14 দিন)",
    "chart.revenue.summary": "শেষ 14 দিনে {total}; সবচেয়ে বেশি {day} তারিখে, {max}",
    "chart.revenue.bar": "{day}: {amount}",
    "unit.ms": "{n} মিলিসেকেন্ড",
    "unit.percent": "{n}%",
    "unit.day": "দিন",
    "unit.hour": "ঘণ্টা",
    "unit.minute": "মিনিট",
    "unit.second": "সেকেন্ড",
    "never": "কখনো না",
    "none": "—",
    "orders.title": "অর্ডার",
    "orders.filter": "অর্ডার বাছাই",
    "orders.status": "অবস্থা",
    "orders.status.all": "সব",
    "orders.status.open": "চলমান (অপেক্ষমাণ, প্রক্রিয়াধীন, অনুমোদিত)",
    "orders.group": "গ্রুপ",
    "orders.group.all": "সব গ্রুপ",
    "orders.since": "শুরুর তারিখ",
    "orders.until": "শেষ তারিখ",
    "orders.q": "খুঁজুন",
    "orders.q.help": "ব্যবহারকারী, নাম, ফোন, অর্ডার বা বার্তার আইডি",
    "orders.apply": "দেখান",
    "orders.reset": "বাছাই মুছুন",
    "orders.count": "{total}টি অর্ডার",
    "orders.range": "{total}টির মধ্যে {first}–{last}",
    "orders.empty": "এই বাছাইয়ে কোনো অর্ডার নেই।",
    "orders.prev": "আগের পাতা",
    "orders.next": "পরের পাতা",
    "orders.pages": "পাতা",
    "orders.live": "লাইভ",
    "orders.connecting": "সংযোগ হচ্ছে…",
    "orders.reconnecting": "আবার সংযোগ হচ্ছে…",
    "orders.bad_filter": "একটি বাছাই বাদ দেওয়া হয়েছে: {reason}",
    "col.id": "অর্ডার",
    "col.time": "সময়",
    "col.group": "গ্রুপ",
    "col.user": "রিসেলার",
    "col.diamonds": "ডায়মন্ড",
    "col.amount": "টাকা",
    "col.status": "অবস্থা",
    "col.checks": "যাচাই",
    "col.issues": "সমস্যা",
    "col.actions": "কাজ",
    "order.title": "অর্ডার {id}",
    "order.back": "সব অর্ডার",
    "order.summary": "অর্ডার",
    "order.text": "বার্তার লেখা",
    "order.group_id": "গ্রুপ আইডি",
    "order.user_id": "ব্যবহারকারীর আইডি",
    "order.user_alt": "অন্য আইডি",
    "order.user_name": "নাম",
    "order.message_id": "বার্তার আইডি",
    "order.rate": "রেট (প্রতি ডায়মন্ড)",
    "order.times": "সময়সূচি",
    "order.created_at": "পাঠানো হয়েছে",
    "order.received_at": "বট পেয়েছে",
    "order.processing_at": "প্রক্রিয়া শুরু",
    "order.approved_at": "অনুমোদন",
    "order.completed_at": "সম্পন্ন",
    "order.cancelled_at": "বাতিল",
    "order.deleted_at": "মুছে ফেলা",
    "order.issues": "সমস্যা",
    "order.no_issues": "কোনো খোলা সমস্যা নেই।",
    "order.checks": "যাচাইয়ের হিসাব",
    "order.check_count": "যাচাই",
    "order.last_checked_at": "শেষ যাচাই",
    "order.last_check_status": "শেষ যাচাইয়ে অবস্থা",
    "order.delivery": "ডেলিভারি বার্তা",
    "order.receipt": "প্রাপ্তি বার্তা",
    "order.attempts": "চেষ্টা",
    "order.last_attempt_at": "শেষ চেষ্টা",
    "order.last_error": "শেষ ত্রুটি",
    "order.sent_id": "পাঠানো বার্তার আইডি",
    "order.confirmed_at": "পাঠানো নিশ্চিত",
    "order.audit": "পরিবর্তনের ইতিহাস",
    "order.audit.at": "কখন",
    "order.audit.change": "পরিবর্তন",
    "order.audit.by": "কে",
    "order.audit.note": "মন্তব্য",
    "order.audit.created": "তৈরি",
    "order.recovered": "বট বন্ধ থাকার পর উদ্ধার করা",
    "note.recovered": "বট বন্ধ থাকার পর উদ্ধার করা",
    "note.held_due": "আটকে রাখা: বকেয়ার সীমা পূর্ণ",
    "note.due_ok": "বকেয়া আবার সীমার মধ্যে",
    "note.delivery_sent": "ডেলিভারি বার্তা পাঠানো হয়েছে",
    "note.delivery_earlier": "ডেলিভারি আগেই নিশ্চিত হয়েছিল",
    "note.message_deleted": "হোয়াটসঅ্যাপে অর্ডারের বার্তাটি মুছে ফেলা হয়েছে",
    "note.edited": "হোয়াটসঅ্যাপে বদলানো: .{before} → .{after}",
    "note.issue_raised": "সমস্যা ধরা পড়েছে: {issue}",
    "note.issue_cleared": "সমস্যা মিটেছে: {issue}",
    "note.imported": "পুরোনো বটের database.json থেকে আনা (আইডি {id})",
    "note.import": "আনার সময়: {details}",
    "yes": "হ্যাঁ",
    "no": "না",
    "rec.title": "মিলকরণ",
    "rec.intro": "প্রতিটি গ্রুপ কয়েক সেকেন্ড পরপর তার চলমান অর্ডারগুলো যাচাই করে। খোলা সমস্যা আর প্রতিটি গ্রুপের সাম্প্রতিক চক্র।",
    "rec.issues": "খোলা সমস্যা",
    "rec.no_issues": "কোনো খোলা সমস্যা নেই।",
    "rec.cycles": "গ্রুপভিত্তিক সাম্প্রতিক চক্র",
    "rec.no_cycles": "এখনো কোনো চক্র চলেনি।",
    "rec.more_groups": "{total}টি গ্রুপের মধ্যে {shown}টি দেখানো হচ্ছে (সমস্যাযুক্ত গ্রুপ আগে)।",
    "rec.started_at": "শুরু",
    "rec.checked": "যাচাই",
    "rec.open_issues": "খোলা সমস্যা",
    "rec.new_issues": "নতুন",
    "rec.cleared_issues": "মিটেছে",
    "rec.actions": "পদক্ষেপ",
    "rec.duration": "সময় লেগেছে",
    "rec.recent": "সাম্প্রতিক চক্র",
    "groups.title": "গ্রুপ",
    "groups.intro": "প্রতিটি গ্রুপের ডায়মন্ডপ্রতি দাম আর সুইচ। পরিবর্তন সাথে সাথে নতুন অর্ডারে লাগে।",
    "groups.empty": "এখনো কোনো গ্রুপ নেই: কোনো গ্রুপে প্রথম বার্তা দেখলেই বট গ্রুপটি যোগ করে।",
    "groups.name": "গ্রুপ",
    "groups.enabled": "অর্ডার নেওয়া চালু",
    "groups.rate": "রেট (প্রতি ডায়মন্ড ৳)",
    "groups.rate.help": "ধনাত্মক সংখ্যা, দশমিকের পরে সর্বোচ্চ 4 অঙ্ক, যেমন 2.30",
    "groups.auto_approve": "স্বয়ংক্রিয় অনুমোদন",
    "groups.auto_approve_max": "সর্বোচ্চ কত ডায়মন্ড পর্যন্ত স্বয়ংক্রিয়",
    "groups.due_limit": "বকেয়ার সীমা (৳)",
    "groups.due_limit.help": "খালি: কোনো সীমা নেই। যে অর্ডারে বকেয়া সীমা ছাড়াবে তা অপেক্ষায় থাকবে (যেমন 5000)",
    "groups.invalid": "সংরক্ষিত হয়নি: {reason}",
    "groups.orders": "অর্ডার",
    "groups.open": "{n}টি চলমান",
    "groups.save": "সংরক্ষণ",
    "groups.saved": "সংরক্ষিত",
    "groups.saving": "সংরক্ষণ হচ্ছে…",
    "groups.bad_max": "auto_approve_max: ডায়মন্ডের পূর্ণ সংখ্যা দিন, 0 বা তার বেশি",
    "groups.updated": "গ্রুপ {name} সংরক্ষিত হয়েছে।",
    "method.bkash": "বিকাশ (bKash)",
    "method.nagad": "নগদ (Nagad)",
    "method.rocket": "রকেট (Rocket)",
    "method.bank": "ব্যাংক",
    "method.cash": "ক্যাশ (হাতে নগদ)",
    "method.other": "অন্যান্য",
    "pay.title": "পেমেন্ট",
    "pay.intro": "কোনো গ্রুপ কত টাকা দিল লিখে রাখুন (বিকাশ, নগদ, ক্যাশ …): গ্রুপের বাকি সাথে সাথে কমে যায়। অনুমোদিত অর্ডারের টাকা গ্রুপের বিলে যোগ হয়।",
    "pay.record": "পেমেন্ট লিখুন",
    "pay.group": "গ্রুপ",
    "pay.group.choose": "গ্রুপ বাছুন",
    "pay.amount": "পরিমাণ (৳)",
    "pay.amount.help": "টাকা, দশমিকের পরে সর্বোচ্চ 2 অঙ্ক, যেমন 500 বা 23.50",
    "pay.method": "মাধ্যম",
    "pay.reference": "রেফারেন্স / TrxID",
    "pay.reference.help": "বিকাশ বা নগদের মেসেজে থাকা ট্রানজেকশন আইডি",
    "pay.note": "মন্তব্য",
    "pay.submit": "পেমেন্ট সংরক্ষণ",
    "pay.saving": "সংরক্ষণ হচ্ছে…",
    "pay.fill_due": "পুরো বাকি বসান",
    "pay.due_now": "এখন বাকি: {amount}",
    "pay.recorded": "পেমেন্ট {id} সংরক্ষিত: {group} থেকে {method}-এ {amount}। এখন বাকি: {due}।",
    "pay.duplicate": "এই ফর্মটি আগেই একবার পাঠানো হয়েছে: আবার লেখার আগে নিচের তালিকায় পেমেন্টটি দেখে নিন।",
    "pay.refused": "সংরক্ষণ হয়নি: {reason}",
    "pay.duplicate_ref": "রেফারেন্স {reference} আগেই লেখা আছে: পেমেন্ট {id}, {when} তারিখে {method}-এ {amount} ({by})। এই পেমেন্টটিও লিখবেন?",
    "pay.record_anyway": "তবুও লিখুন",
    "pay.dues": "গ্রুপভিত্তিক বাকি",
    "pay.billed": "বিল",
    "pay.paid": "পরিশোধ",
    "pay.due": "বাকি",
    "pay.total_due": "মোট বাকি",
    "pay.advance": "{amount} অগ্রিম",
    "pay.ledger": "হিসাব",
    "pay.list": "পাওয়া পেমেন্ট",
    "pay.filter": "পেমেন্ট বাছাই",
    "pay.count": "{total}টি পেমেন্ট",
    "pay.range": "{total}টির মধ্যে {first}–{last}",
    "pay.empty": "এই বাছাইয়ে কোনো পেমেন্ট নেই।",
    "pay.col.id": "পেমেন্ট",
    "pay.col.by": "লিখেছেন",
    "pay.void_col": "ভুল?",
    "pay.void": "বাতিল",
    "pay.void_button": "বাতিল করুন",
    "pay.void_reason": "কেন ভুল",
    "pay.void_reason_needed": "পেমেন্টটি কেন ভুল তা লিখুন: তালিকায় থাকবে, বাতিল চিহ্নসহ।",
    "pay.voided": "পেমেন্ট {id} বাতিল: তালিকায় থাকবে কিন্তু হিসাবে ধরা হবে না। এখন বাকি: {due}।",
    "ledger.title": "হিসাব (লেজার): {name}",
    "ledger.intro": "অনুমোদিত অর্ডারে গ্রুপের বাকি বাড়ে, পেমেন্টে কমে। ব্যালান্স মানে প্রতিটি লাইনের পরে গ্রুপের বাকি; ঋণাত্মক হলে অগ্রিম।",
    "ledger.all_time": "শুরু থেকে এখন পর্যন্ত",
    "ledger.dates": "তারিখ",
    "ledger.opening": "প্রারম্ভিক বাকি",
    "ledger.closing": "সমাপনী বাকি",
    "ledger.in_range": "এই তারিখগুলোতে",
    "ledger.col.ref": "সূত্র",
    "ledger.col.description": "বিবরণ",
    "ledger.col.debit": "বিল",
    "ledger.col.credit": "পরিশোধ",
    "ledger.col.balance": "ব্যালান্স (বাকি)",
    "ledger.empty": "এই তারিখগুলোতে কোনো অনুমোদিত অর্ডার বা পেমেন্ট নেই।",
    "ledger.truncated": "{total}টি লাইনের মধ্যে {first}–{last}; প্রারম্ভিক বাকি মানে প্রথম দেখানো লাইনের আগের বাকি।",
    "ledger.earlier": "আগের লাইন",
    "ledger.later": "পরের লাইন",
    "ledger.undated": "তারিখ অজানা",
    "ledger.back": "সব গ্রুপ",
    "ledger.orders": "গ্রুপের অর্ডার",
    "reports.title": "দৈনিক রিপোর্ট",
    "reports.intro": "একদিনের গ্রুপভিত্তিক হিসাব: কত অর্ডার এসেছে, কত ডায়মন্ড ও টাকার অর্ডার অনুমোদিত হয়েছে, কত পেমেন্ট এসেছে, আর এখন প্রতিটি গ্রুপের বাকি।",
    "reports.day": "দিন",
    "reports.prev": "আগের দিন",
    "reports.next": "পরের দিন",
    "reports.today": "আজ",
    "reports.orders": "অর্ডার",
    "reports.revenue": "আয়",
    "reports.payments": "পেমেন্ট",
    "reports.due": "এখন বাকি",
    "reports.bad_day": "দিনটি বাদ দেওয়া হয়েছে: {reason}",
    "export.title": "CSV ডাউনলোড",
    "export.intro": "তারিখগুলোর সব অর্ডার বা পেমেন্ট, Excel বা Google Sheets-এর জন্য; সময় {tz} অনুযায়ী।",
    "export.orders": "অর্ডার (CSV)",
    "export.payments": "পেমেন্ট (CSV)",
    "groups.due": "বাকি",
    "groups.ledger": "হিসাব",
    "groups.pay": "পেমেন্ট লিখুন",
    "wa.title": "হোয়াটসঅ্যাপ",
    "wa.state": "সংযোগ",
    "wa.kind": "মাধ্যম",
    "wa.kind.sandbox": "স্যান্ডবক্স (স্থানীয় পরীক্ষামূলক চ্যাট)",
    "wa.kind.whatsapp": "হোয়াটসঅ্যাপ",
    "wa.detail": "বিস্তারিত",
    "wa.queued": "পাঠানোর অপেক্ষায় বার্তা",
    "wa.sent_last_hour": "শেষ এক ঘণ্টায় পাঠানো",
    "wa.paused_until": "বার্তা পাঠানো বন্ধ থাকবে",
    "wa.sandbox.intro": "বট এখন স্যান্ডবক্সের সাথে যুক্ত: ডেমো ও প্রশিক্ষণের জন্য হোয়াটসঅ্যাপের মতো একটি স্থানীয় চ্যাট। সেখানে রিসেলার হয়ে .10 পাঠিয়ে অর্ডার পরীক্ষা করুন।",
    "wa.sandbox.address": "স্যান্ডবক্সের ঠিকানা",
    "wa.sandbox.open": "স্যান্ডবক্স চ্যাট খুলুন",
    "wa.pair.title": "বটের হোয়াটসঅ্যাপ নম্বর যুক্ত করুন",
    "wa.pair.qr": "এই কোডটি স্ক্যান করুন: হোয়াটসঅ্যাপ → লিংকড ডিভাইস → ডিভাইস লিংক করুন।",
    "wa.pair.qr_alt": "হোয়াটসঅ্যাপ যুক্ত করার QR কোড",
    "wa.pair.code": "অথবা ফোনে এই পেয়ারিং কোড দিন",
    "wa.pair.expires": "কোডের মেয়াদ",
    "wa.pair.waiting": "পরের কোডের অপেক্ষা…",
    "wa.repair": "আবার যুক্ত করুন",
    "wa.repair.confirm": "এই হোয়াটসঅ্যাপ সেশন থেকে লগআউট করে আবার যুক্ত করবেন? নতুন করে যুক্ত না হওয়া পর্যন্ত বট উত্তর দেবে না।",
    "wa.repair.started": "আবার যুক্ত করার প্রক্রিয়া শুরু হয়েছে।",
    "wa.unavailable": "বটের এই সংস্করণে হোয়াটসঅ্যাপ নিয়ন্ত্রণ নেই।",
    "wa.unreachable": "এই মুহূর্তে হোয়াটসঅ্যাপের অবস্থা জানা যাচ্ছে না।",
    "gateway.stopped": "বন্ধ",
    "gateway.connecting": "সংযোগ হচ্ছে",
    "gateway.connected": "সংযুক্ত",
    "gateway.reconnecting": "আবার সংযোগ হচ্ছে",
    "gateway.pairing": "যুক্ত করার অপেক্ষায়",
    "gateway.logged_out": "লগআউট হয়ে গেছে",
    "gateway.banned": "সাময়িক নিষেধাজ্ঞা",
    "error.title": "সমস্যা হয়েছে",
    "error.unreachable": "বট এই মুহূর্তে সাড়া দিচ্ছে না। বট আবার চালু হলে পাতাটি কাজ করবে।",
    "error.not_found": "{id} নামে কোনো অর্ডার নেই।",
    "error.no_group": "{id} নামে কোনো গ্রুপ নেই।",
    "error.refused": "করা যায়নি: {reason}",
    "error.back": "ফিরে যান",
    "error.retry": "আবার চেষ্টা করুন",
    "error.network": "প্যানেলের সাথে সংযোগ নেই। নেটওয়ার্ক দেখে আবার চেষ্টা করুন।",
}

STRINGS: dict[str, dict[str, str]] = {"en": EN, "bn": BN}

# How each gateway state reads at a glance: ok (green), warn (amber), bad (red).
GATEWAY_TONE = {
    "connected": "ok",
    "connecting": "warn",
    "reconnecting": "warn",
    "pairing": "warn",
    "stopped": "bad",
    "logged_out": "bad",
    "banned": "bad",
}


class Texts(dict[str, str]):
    """One language's strings; a missing key shows itself instead of breaking a page."""

    language: str = "en"

    def __missing__(self, key: str) -> str:
        return key

    def label(self, kind: str, value: str) -> str:
        """`status`, `action`, `issue`, `gateway`, `bucket` labels; the raw value if unknown."""
        return self.get(f"{kind}.{value}", value)


def texts(language: str) -> Texts:
    """The strings of `language` (bn or en; anything else falls back to English)."""
    t = Texts(STRINGS.get(language, EN))
    t.language = language if language in STRINGS else "en"
    return t


# --- audit notes ------------------------------------------------------------------------------

# The notes the system writes into an order's audit trail (in English, in the stored record),
# shown in the panel's language. The stored note is never changed; an unknown note shows as is.
_EXACT_NOTES = {
    "recovered after downtime": "note.recovered",
    "held: the due limit was reached": "note.held_due",
    "the due is within the limit again": "note.due_ok",
    "delivery message sent": "note.delivery_sent",
    "delivery was confirmed earlier": "note.delivery_earlier",
    "the order message was deleted in WhatsApp": "note.message_deleted",
}
_PATTERN_NOTES = (
    (re.compile(r"edited in WhatsApp: \.(?P<before>\d+) → \.(?P<after>\d+)"), "note.edited"),
    (re.compile(r"issue raised: (?P<issue>[a-z_]+)(?P<detail> \(.*\))?", re.S), "note.issue_raised"),
    (re.compile(r"issue cleared: (?P<issue>[a-z_]+)"), "note.issue_cleared"),
    (re.compile(r"imported from the seed's database\.json \(id (?P<id>.*)\)", re.S), "note.imported"),
    (re.compile(r"import: (?P<details>.*)", re.S), "note.import"),
)


def _note_part(part: str, t: Texts) -> str:
    key = _EXACT_NOTES.get(part)
    if key is not None:
        return t[key]
    for pattern, key in _PATTERN_NOTES:
        match = pattern.fullmatch(part)
        if match is not None:
            values = {k: v or "" for k, v in match.groupdict().items()}
            if "issue" in values:
                values["issue"] = t.label("issue", values["issue"])
            detail = values.pop("detail", "")
            return t[key].format(**values) + detail
    return part


def audit_note(note: str | None, t: Texts) -> str:
    """A stored audit note in the panel's language ("; " joins several)."""
    if not note:
        return ""
    return "; ".join(_note_part(part, t) for part in note.split("; "))


# --- how things are written -------------------------------------------------------------------


def number(value: int | float | None) -> str:
    """1234567 → "1,234,567"; None → "—"."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def taka(amount: str | Decimal | None) -> str:
    """"1000.00" → "৳1000", "23.50" → "৳23.50", "10000000" → "৳1,00,00,000": as the bot writes
    money in the chat (domain.money.taka)."""
    if amount is None or amount == "":
        return "—"
    try:
        d = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    return "৳" + money.taka(d) if d.is_finite() else str(amount)


def _amount(value: str | Decimal | None) -> Decimal | None:
    try:
        d = Decimal(str(value)) if value is not None and value != "" else None
    except InvalidOperation:
        return None
    return d if d is not None and d.is_finite() else None


def due_tone(amount: str | Decimal | None) -> str:
    """How a due reads at a glance: "owes" (more than 0), "credit" (an advance), "zero"."""
    d = _amount(amount)
    if d is None or d == 0:
        return "zero"
    return "owes" if d > 0 else "credit"


def due_text(amount: str | Decimal | None, t: Mapping[str, str]) -> str:
    """A due for people: "৳1000", or "৳500 advance" when the group paid more than it was billed."""
    d = _amount(amount)
    if d is None:
        return "—"
    return t["pay.advance"].format(amount=taka(-d)) if d < 0 else taka(d)


def size(n: int | None) -> str:
    """Bytes for people: "812 B", "48.2 KB", "3.1 MB"."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def duration(seconds: float | None, t: Mapping[str, str]) -> str:
    """The two largest units: "3 d 4 h", "12 min 5 s"."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    parts = [(s // 86400, t["unit.day"]), (s % 86400 // 3600, t["unit.hour"]),
             (s % 3600 // 60, t["unit.minute"]), (s % 60, t["unit.second"])]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n} {unit}" for n, unit in parts[:2])


def _moment(value: str | None, tz: tzinfo) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(tz) if moment.tzinfo is not None else moment


def when(value: str | None, tz: tzinfo) -> str:
    """An API time (ISO 8601 with offset) as "2025-11-24 21:00" in the shop's time zone."""
    moment = _moment(value, tz)
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def when_exact(value: str | None, tz: tzinfo, now: datetime | None = None) -> str:
    """With seconds; the date only when it is not today: "21:59:55" or "2025-11-23 21:59:55"."""
    moment = _moment(value, tz)
    if moment is None:
        return "—"
    today = (now or datetime.now(tz)).astimezone(tz).date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M:%S")
